"""Export bluesky runs with area-detector frames to NeXus files.

* :func:`export` / :class:`NexusSerializer`: runs -> NeXus (suitcase style);
* :func:`write_nexus_image`: one in-memory image -> NeXus;
* :func:`finish_export`: rename a complete ``*.h5.tmp`` to its final name.

After the fact, from a catalog (several runs -> several NXentry in one file)::

    from adtoolkit.export import export
    export([catalog[uid1], catalog[uid2]], "/data/nexus", "scan_{scan_id}",
           path_map={"/epics/data": "/mnt/beamline/data"})

Live, one file per run, written when the run stops::

    serializer = NexusSerializer("/data/nexus", copy=True)
    RE.subscribe(serializer)
    RE(scan([det], motor, 0, 1, 11))
    serializer.wait()

Command line: ``adtoolkit export --catalog NAME UID... -o DIR [--copy]``.
"""

from typing import TYPE_CHECKING

from adtoolkit._lazy import lazy_getattr

# The CLI imports ``adtoolkit.export.command`` to build its parser for every
# sub-command (``adtoolkit ioc`` too), so this package must not import h5py,
# event_model or dask up front: names are resolved on first use (PEP 562).
_EXPORTS = {
    "ExportError": ".atomic",
    "finish_export": ".atomic",
    "FrameError": "..runs.frames",
    "write_nexus_image": ".image",
    "ExportWarning": ".nexus",
    "NexusSerializer": ".serializer",
    "export": ".serializer",
    "write_runs": ".serializer",
}

__all__ = [
    "ExportError",
    "ExportWarning",
    "FrameError",
    "NexusSerializer",
    "export",
    "finish_export",
    "write_nexus_image",
    "write_runs",
]

if TYPE_CHECKING:
    from ..runs.frames import FrameError
    from .atomic import ExportError, finish_export
    from .image import write_nexus_image
    from .nexus import ExportWarning
    from .serializer import NexusSerializer, export, write_runs


__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
