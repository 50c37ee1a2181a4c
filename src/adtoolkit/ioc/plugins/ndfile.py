"""The file plugins: TIFF1, JPEG1, netCDF1 and HDF1 on the NDFile machinery."""

from __future__ import annotations

import socket
from typing import Any

from adtoolkit.ioc.ndfile import FileError, NDFilePlugin, Writer
from adtoolkit.ioc.writers import JPEGWriter, TIFFWriter


class NDFileHDF5(NDFilePlugin):
    """HDF1: every NDFile and NDFileHDF5 record; files by adtoolkit.ioc.hdf5 when present."""

    plugin_type = "NDFileHDF5"
    templates = ("NDFile", "NDFileHDF5", "NDFileCompat")

    def init_params(self) -> None:
        super().init_params()
        # NDFileHDF5.cpp constructor values (they override the template VAL at iocInit)
        p = self.params
        p.update(
            {
                "HDF5_storeAttributes": 1,
                "HDF5_storePerformance": 1,
                "HDF5_zCompressLevel": 6,
                "HDF5_chunkBoundaryThreshold": 65536,
                "HDF5_layoutValid": 1,
                "HDF5_layoutErrorMsg": "Default layout selected",
                "HDF5_SWMRSupported": 1,
            }
        )

    def write_param(self, addr: int, name: str, value: Any) -> None:
        if name == "HDF5_layoutFilename":
            from adtoolkit.ioc.hdf5 import validate_layout_param

            self.params.set(name, value)
            valid, message = validate_layout_param(str(value or ""))
            self.params.set("HDF5_layoutValid", int(valid))
            self.params.set("HDF5_layoutErrorMsg", message[:255])
        elif name == "HDF5_SWMRFlushNow":
            writer = self.writer
            if value and writer is not None:
                try:
                    writer.flush()
                except Exception as exc:
                    self._error(f"Error flushing file: {exc}")
            self.params.set(name, 0)
        else:
            super().write_param(addr, name, value)

    def make_writer(self) -> Writer:
        from adtoolkit.ioc.hdf5 import HDF5Writer

        return HDF5Writer(
            on_readback=self.on_readback,
            plugin_attributes=lambda: self._attribute_collector,
            hostname=socket.gethostname(),
        )


class NDFileTIFF(NDFilePlugin):
    plugin_type = "NDFileTIFF"
    multiple_arrays = False

    def make_writer(self) -> Writer:
        return TIFFWriter()


class NDFileJPEG(NDFilePlugin):
    plugin_type = "NDFileJPEG"
    templates = ("NDFile", "NDFileJPEG", "NDFileCompat")
    multiple_arrays = False

    def make_writer(self) -> Writer:
        return JPEGWriter()


class NDFileNetCDF(NDFilePlugin):
    """netCDF1: records only; opening a file reports that the format is not simulated."""

    plugin_type = "NDFileNetCDF"

    def make_writer(self) -> Writer:
        raise FileError("netCDF files are not written by the simulated IOC")


__all__ = ["NDFileHDF5", "NDFileJPEG", "NDFileNetCDF", "NDFileTIFF"]
