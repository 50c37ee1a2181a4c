"""Read what acquisitions produced: runs (exported NeXus or databroker), orGUI backend.

``readers.tree`` (the ``adtoolkit tree`` command) lives here too.
"""

from .pathmap import PathMap, as_path_mapper
from .run import OpenedRun, open_run

__all__ = ["OpenedRun", "PathMap", "as_path_mapper", "open_run"]
