"""File plugins (NDPluginFile): NDFile records for TIFF, JPEG, netCDF and HDF5."""

from __future__ import annotations

from adtoolkit.ioc.plugin import PluginDriver


class NDFilePlugin(PluginDriver):
    plugin_type = "NDPluginFile"
    templates = ("NDFile", "NDFileCompat")


class NDFileHDF5(NDFilePlugin):
    plugin_type = "NDFileHDF5"
    templates = ("NDFile", "NDFileHDF5", "NDFileCompat")


class NDFileTIFF(NDFilePlugin):
    plugin_type = "NDFileTIFF"


class NDFileJPEG(NDFilePlugin):
    plugin_type = "NDFileJPEG"
    templates = ("NDFile", "NDFileJPEG", "NDFileCompat")


class NDFileNetCDF(NDFilePlugin):
    plugin_type = "NDFileNetCDF"
