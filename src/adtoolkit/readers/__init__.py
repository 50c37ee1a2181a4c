"""Read what acquisitions produced: runs (exported NeXus or databroker), orGUI backend.

* :func:`open_run`: frames (lazy, dask/xarray) and scalars of a run;
* :func:`as_path_mapper`: the IOC-path -> local-path rule every reader uses;
* ``readers.orgui_backend.AdtoolkitScan``: orGUI backend (optional extra).

``readers.tree`` (the ``adtoolkit tree`` command) lives here too, so this
package imports nothing heavy up front: the CLI imports it for every
sub-command.  Names resolve on first use (PEP 562).
"""

from importlib import import_module
from typing import TYPE_CHECKING

_EXPORTS = {
    "PathMap": ".pathmap",
    "as_path_mapper": ".pathmap",
    "OpenedRun": ".run",
    "open_run": ".run",
}

__all__ = ["OpenedRun", "PathMap", "as_path_mapper", "open_run"]

if TYPE_CHECKING:
    from .pathmap import PathMap, as_path_mapper
    from .run import OpenedRun, open_run


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
