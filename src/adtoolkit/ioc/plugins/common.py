"""The rest of ADSimDetector's EXAMPLE_commonPlugins.cmd, as instance entries.

:data:`COMMON_PLUGINS_EXTRA` is what ``iocs/commonPlugins`` adds to the built-in
default instance (see :mod:`adtoolkit.ioc.server`): the Stats plugins 2-5, a time-series port
``StatsN:TS:`` behind every Stats plugin (NDTimeSeriesConfigure("STATSn_TS", ...,
"STATSn", 1, 23)), ROI2-ROI4, CC2, ROIStat1 (8 ROIs) and Attr1 (8 attributes, with its
time series at ``Attr1:TS:``).  As on the real IOC every one takes its
arrays from the cam: the NDArrayPort record's VAL ($(PORT)) overrides the port
given to NDStatsConfigure at iocInit, so Stats2-5 read SIM1, not ROI1-4.
"""

from __future__ import annotations

from typing import Any


def time_series_entry(n: int) -> dict[str, Any]:
    """The time-series port behind Stats plugin ``n`` (NDTimeSeriesConfigure("STATSn_TS"))."""
    return {
        "type": "NDTimeSeries",
        "suffix": f"Stats{n}:",  # the signal waveforms Stats{n}:TSMinValue ...
        "prefix": "TS:",  # its own records: Stats{n}:TS:TSAcquire ...
        "signals": "NDStatsTS",
        "port": f"STATS{n}_TS",
        "ndarray_port": f"STATS{n}",
        "ndarray_addr": 1,
        "enabled": True,
    }


def _stats(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "NDStats", "suffix": f"Stats{n}:", "port": f"STATS{n}", "ndarray_port": "SIM1"},
        time_series_entry(n),
    ]


#: what EXAMPLE_commonPlugins.cmd loads beyond the plugins ophyd's SimDetector names
COMMON_PLUGINS_EXTRA: list[dict[str, Any]] = [
    *(entry for n in range(2, 6) for entry in _stats(n)),
    *(
        {"type": "NDROI", "suffix": f"ROI{n}:", "port": f"ROI{n}", "ndarray_port": "SIM1"}
        for n in range(2, 5)
    ),
    {"type": "NDColorConvert", "suffix": "CC2:", "port": "CC2", "ndarray_port": "SIM1"},
    {"type": "NDROIStat", "suffix": "ROIStat1:", "port": "ROISTAT1", "ndarray_port": "SIM1"},
    {"type": "NDAttribute", "suffix": "Attr1:", "port": "ATTR1", "ndarray_port": "SIM1"},
    {
        "type": "NDTimeSeries",
        "suffix": "Attr1:",  # the signal waveforms Attr1:1:TSArrayValue ...
        "prefix": "TS:",
        "signals": "NDAttributeTS",
        "port": "ATTR1_TS",
        "ndarray_port": "ATTR1",
        "ndarray_addr": 1,
        "enabled": True,
    },
]
