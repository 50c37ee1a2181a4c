"""PEP 562 lazy exports, shared by the packages whose import must stay cheap.

``adtoolkit.export`` and ``adtoolkit.readers`` name things that pull in h5py,
dask or databroker; the CLI imports those packages for every sub-command, so
their names resolve on first use instead of at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_getattr(package: str, namespace: dict[str, Any], exports: Mapping[str, str]) -> Callable:
    """A module ``__getattr__`` importing ``exports[name]`` (relative to ``package``) on use."""

    def __getattr__(name: str) -> Any:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
