"""Export bluesky runs with area-detector frames to NeXus files.

* :func:`export` / :class:`NexusSerializer`: runs -> NeXus (suitcase style);
* :func:`write_nexus_image`: one in-memory image -> NeXus;
* :func:`finish_export`: rename a complete ``*.h5.tmp`` to its final name.
"""

from .atomic import ExportError, finish_export
from .frames import FrameError
from .image import write_nexus_image
from .nexus import ExportWarning
from .serializer import NexusSerializer, export, write_runs

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
