"""Read what acquisitions produced: runs (exported NeXus or databroker), orGUI backend.

* :func:`open_run`: frames (lazy, dask/xarray) and scalars of a run;
* :func:`as_path_mapper`: the IOC-path -> local-path rule every reader uses;
* ``readers.orgui_backend.AdtoolkitScan``: orGUI backend (optional extra).

``readers.tree`` (the ``adtoolkit tree`` command) lives here too, so this
package imports nothing heavy up front: the CLI imports it for every
sub-command.  Names resolve on first use (PEP 562).
"""

from typing import TYPE_CHECKING

from adtoolkit._lazy import lazy_getattr

_EXPORTS = {
    "PathMap": "..runs.pathmap",
    "as_path_mapper": "..runs.pathmap",
    "OpenedRun": ".run",
    "open_run": ".run",
}

__all__ = ["OpenedRun", "PathMap", "as_path_mapper", "open_run"]

if TYPE_CHECKING:
    from ..runs.pathmap import PathMap, as_path_mapper
    from .run import OpenedRun, open_run


__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
