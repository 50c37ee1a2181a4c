"""The plugins the simulated IOC serves, by their ADCore class name."""

from __future__ import annotations

from adtoolkit.ioc.plugin import PluginDriver, make_passthrough
from adtoolkit.ioc.plugins.attribute import NDAttribute
from adtoolkit.ioc.plugins.badpixel import NDBadPixel
from adtoolkit.ioc.plugins.codec import NDCodec
from adtoolkit.ioc.plugins.fft import NDFFT
from adtoolkit.ioc.plugins.ndfile import NDFileHDF5, NDFileJPEG, NDFileNetCDF, NDFileTIFF
from adtoolkit.ioc.plugins.overlay import NDOverlay
from adtoolkit.ioc.plugins.process import NDProcess
from adtoolkit.ioc.plugins.pva import NDPva
from adtoolkit.ioc.plugins.roi import NDROI
from adtoolkit.ioc.plugins.roistat import NDROIStat
from adtoolkit.ioc.plugins.scatter_gather import NDGather, NDScatter
from adtoolkit.ioc.plugins.stats import NDStats
from adtoolkit.ioc.plugins.stdarrays import NDStdArrays
from adtoolkit.ioc.plugins.timeseries import NDTimeSeries

#: plugin class name (as in ADCore) -> driver class
PLUGIN_CLASSES: dict[str, type[PluginDriver]] = {
    "NDStdArrays": NDStdArrays,
    "NDStats": NDStats,
    "NDROI": NDROI,
    "NDProcess": NDProcess,
    "NDOverlay": NDOverlay,
    "NDTransform": make_passthrough("NDPluginTransform", ("NDTransform",)),
    "NDColorConvert": make_passthrough("NDPluginColorConvert", ("NDColorConvert",)),
    "NDCircularBuff": make_passthrough("NDPluginCircularBuff", ("NDCircularBuff",)),
    "NDPva": NDPva,
    "NDTimeSeries": NDTimeSeries,
    "NDROIStat": NDROIStat,
    "NDAttribute": NDAttribute,
    "NDFFT": NDFFT,
    "NDBadPixel": NDBadPixel,
    "NDScatter": NDScatter,
    "NDGather": NDGather,
    "NDCodec": NDCodec,
    "NDFileHDF5": NDFileHDF5,
    "NDFileTIFF": NDFileTIFF,
    "NDFileJPEG": NDFileJPEG,
    "NDFileNetCDF": NDFileNetCDF,
}
