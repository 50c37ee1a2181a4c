"""ophyd devices for EPICS area detectors (ADCore >= 3.4).

Start with :func:`make_detector`; the classes are there to compose your own.
"""

from .cam import ADBaseCam, SimDetectorCam
from .connect import connect_all
from .detector import AreaDetector
from .errors import (
    ConfigurationError,
    ConnectionTimeout,
    FilePathError,
    PortError,
    PrimingError,
    StagingError,
    UnknownPluginError,
)
from .factory import make_detector, missing_plugins, validate_asyn_ports
from .filestore import HDF5FileStore
from .plugins import HDF5Plugin, ImagePlugin, JPEGPlugin, ROIPlugin, StatsPlugin, TIFFPlugin
from .staging import StageSigs

__all__ = [
    "ADBaseCam",
    "AreaDetector",
    "ConfigurationError",
    "ConnectionTimeout",
    "FilePathError",
    "HDF5FileStore",
    "HDF5Plugin",
    "ImagePlugin",
    "JPEGPlugin",
    "PortError",
    "PrimingError",
    "ROIPlugin",
    "SimDetectorCam",
    "StageSigs",
    "StagingError",
    "StatsPlugin",
    "TIFFPlugin",
    "UnknownPluginError",
    "connect_all",
    "make_detector",
    "missing_plugins",
    "validate_asyn_ports",
]
