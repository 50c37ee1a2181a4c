"""Exceptions of the device layer.

Each one names what the user must look at: PVs, ports, paths.  They subclass the
built-in exception a caller would naturally catch (TimeoutError, ValueError, ...).
"""

from __future__ import annotations


class ConnectionTimeout(TimeoutError):
    """Some PVs did not connect within the connection timeout."""

    def __init__(self, device_name: str, unconnected: list[str], timeout: float):
        self.unconnected = list(unconnected)
        shown = ", ".join(self.unconnected[:20])
        more = f" (and {len(self.unconnected) - 20} more)" if len(self.unconnected) > 20 else ""
        super().__init__(
            f"{device_name}: {len(self.unconnected)} PV(s) did not connect within "
            f"{timeout:g} s: {shown}{more}. Is the IOC running and reachable "
            "(EPICS_CA_ADDR_LIST)? Is the prefix right?"
        )


class ConfigurationError(ValueError):
    """A configuration value is wrong; raised before anything is sent to the IOC."""


class PortError(RuntimeError):
    """A plugin's NDArrayPort names a port that no known device provides."""


class UnknownPluginError(ValueError):
    """``make_detector`` was asked for a plugin name it does not know."""


class FilePathError(OSError):
    """The IOC says the directory it should write to does not exist."""


class PrimingError(RuntimeError):
    """A file plugin could not be primed with a frame from the cam."""


class StagingError(RuntimeError):
    """One or more settings could not be applied or restored."""


class FileWriteError(OSError):
    """The IOC reports it could not open or write the data file (WriteStatus error)."""


class AcquisitionError(RuntimeError):
    """A trigger did not deliver the frames it asked for to the file plugin(s)."""
