"""ophyd devices for EPICS area detectors (ADCore >= 3.4).

Start with :func:`make_detector`; the classes are there to compose your own::

    import bluesky.plans as bp
    from adtoolkit.devices import make_detector

    det = make_detector("13SIM1:", name="det", plugins=("hdf1", "image1"),
                        write_path="/data/%Y/%m/%d/",       # as the IOC sees it
                        read_path="/mnt/beamline/data/%Y/%m/%d/")  # as we see it
    RE(bp.count([det], num=3))        # one HDF5 file, frames read back via databroker

    det.frames_per_point = 5          # five frames per trigger
    det.stream_frames = 100           # fly: kickoff/complete/collect, one file

Choose ophyd's control layer (``ophyd.set_cl("caproto")``) before creating devices.
"""

from .cam import ADBaseCam, SimDetectorCam
from .connect import connect_all
from .detector import AreaDetector
from .errors import (
    AcquisitionError,
    ConfigurationError,
    ConnectionTimeout,
    FilePathError,
    FileWriteError,
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
    "AcquisitionError",
    "AreaDetector",
    "ConfigurationError",
    "ConnectionTimeout",
    "FilePathError",
    "FileWriteError",
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
