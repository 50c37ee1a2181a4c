"""NDPluginOverlay: eight overlays, each at its own asyn address (Over1:1: ... Over1:8:).

Drawing is not simulated: arrays pass through; the overlay records are served
so ophyd's OverlayPlugin connects.
"""

from __future__ import annotations

from typing import Any

from adtoolkit.ioc.plugin import PassThroughPlugin

NUM_OVERLAYS = 8


class NDOverlay(PassThroughPlugin):
    plugin_type = "NDPluginOverlay"
    templates = ("NDOverlay",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["num_addr"] = NUM_OVERLAYS
        super().__init__(*args, **kwargs)

    def addr_templates(self) -> tuple[tuple[str, str, int], ...]:
        return tuple(("NDOverlayN", f"{i + 1}:", i) for i in range(NUM_OVERLAYS))
