"""Plugin classes for the plugins the simulated (and a real) ADCore IOC serves.

Each class is ophyd's V34 class for that plugin plus :class:`ADPlugin`, i.e.
:class:`FastStaging` (ordered stage_sigs, put-completion writes, complete restore) and
the list of signals adtoolkit uses.  Records that ADCore removed are
already dropped by ophyd's V33+ classes (PoolMaxBuffers).  The HDF5 plugin that writes
files for bluesky lives in :mod:`adtoolkit.devices.filestore`.
"""

from __future__ import annotations

from ophyd.areadetector import plugins as ophyd_plugins

from .staging import FastStaging
from .writes import WriteBatch

__all__ = [
    "ADPlugin",
    "ImagePlugin",
    "StatsPlugin",
    "ROIPlugin",
    "TIFFPlugin",
    "JPEGPlugin",
    "HDF5Plugin",
    "PLUGIN_TYPES",
]


class ADPlugin(FastStaging):
    """What every plugin class here shares: FastStaging and the signals in use."""

    #: read by ``make_detector``'s checks (PluginType_RBV, asyn port validation);
    #: connected up front with the stage_sigs (see :mod:`adtoolkit.devices.connect`)
    used_signals = ("plugin_type", "port_name", "nd_array_port")


class ImagePlugin(ADPlugin, ophyd_plugins.ImagePlugin_V34):
    """NDPluginStdArrays (``image1:``): the frame as a CA waveform (ArrayData).

    ophyd's ``shaped_image`` is removed: as a non-lazy DerivedSignal it subscribes to
    ArrayData as soon as the device exists, so every frame travels to the client over
    CA and its callback makes four more CA reads per frame -- a per-point cost paid
    even when nobody looks.  The ``image`` property (read on demand) remains.
    """

    shaped_image = None


class StatsPlugin(ADPlugin, ophyd_plugins.StatsPlugin_V34):
    """NDPluginStats (``Stats1:``)."""


class ROIPlugin(ADPlugin, ophyd_plugins.ROIPlugin_V34):
    """NDPluginROI (``ROI1:``)."""


class TIFFPlugin(ADPlugin, ophyd_plugins.TIFFPlugin_V34):
    """NDFileTIFF (``TIFF1:``)."""


class JPEGPlugin(ADPlugin, ophyd_plugins.JPEGPlugin_V34):
    """NDFileJPEG (``JPEG1:``)."""


class HDF5Plugin(ADPlugin, ophyd_plugins.HDF5Plugin_V34):
    """NDFileHDF5 (``HDF1:``) without bluesky file bookkeeping.

    ophyd's ``HDF5Plugin.stage`` refuses an unprimed plugin; the file-store subclass
    primes instead, so that check is not inherited here.
    """

    def stage(self, *, batch: WriteBatch | None = None) -> list[object]:  # noqa: D102
        # skip ophyd's UnprimedPlugin check
        return FastStaging.stage(self, batch=batch)


#: PluginType_RBV prefix of each class, used to check that a suffix is what it claims
PLUGIN_TYPES = {
    ImagePlugin: "NDPluginStdArrays",
    StatsPlugin: "NDPluginStats",
    ROIPlugin: "NDPluginROI",
    TIFFPlugin: "NDFileTIFF",
    JPEGPlugin: "NDFileJPEG",
    HDF5Plugin: "NDFileHDF5",
}
