"""NDPluginPva (``Pva1:``): every array as an NTNDArray on pvAccess (``Pva1:Image``).

The real IOC serves the PV ``$(PREFIX)Pva1:Image`` from qsrv's pvAccess server,
started by commonPlugins.cmd (startPVAServer); its run.sh puts that server on
loopback with the UDP search port CA+2 and the TCP port CA+3.  Here the server
is p4p's, in the IOC process (:class:`PvaServer`), started once the CA port is
known; the plugin posts each array it receives, as NDPluginPva does:

- ``value``: the data, flattened, in the union member of its type (ubyteValue ...);
- ``codec``: name "" (uncompressed) and parameters = the pvData scalar type of
  the data (pvUByte = 5 ...), compressedSize = uncompressedSize = its bytes;
- ``dimension``: size/offset/fullSize/binning/reverse of each NDArray dimension
  (X first);
- ``uniqueId``, ``dataTimeStamp`` (the array's EPICS time stamp, POSIX seconds)
  and ``timeStamp`` (when posted);
- ``attribute``: the array's NDAttributes (name, value, descriptor, sourceType,
  source), e.g. ColorMode.

Without p4p (or when the ports are taken) the records are still served and the
IOC runs on; the reason is logged.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import POSIX_TIME_AT_EPICS_EPOCH, NDArray
from adtoolkit.ioc.plugin import PluginDriver

log = logging.getLogger(__name__)

#: numpy dtype -> (NTNDArray union member, pvData ScalarType code)
UNION = {
    np.dtype(np.int8): ("byteValue", 1),
    np.dtype(np.int16): ("shortValue", 2),
    np.dtype(np.int32): ("intValue", 3),
    np.dtype(np.int64): ("longValue", 4),
    np.dtype(np.uint8): ("ubyteValue", 5),
    np.dtype(np.uint16): ("ushortValue", 6),
    np.dtype(np.uint32): ("uintValue", 7),
    np.dtype(np.uint64): ("ulongValue", 8),
    np.dtype(np.float32): ("floatValue", 9),
    np.dtype(np.float64): ("doubleValue", 10),
}
#: NDAttrSource_t order (NDAttribute.h)
SOURCE_TYPES = (
    "NDAttrSourceDriver",
    "NDAttrSourceParam",
    "NDAttrSourceEPICSPV",
    "NDAttrSourceFunct",
    "NDAttrSourceConst",
)
SOURCE_NAMES = {"NDAttrSourceDriver": "Driver"}


def _stamp(seconds: float) -> dict[str, int]:
    whole = int(seconds)
    nanoseconds = min(int(round((seconds - whole) * 1e9)), 999_999_999)
    return {"secondsPastEpoch": whole, "nanoseconds": nanoseconds, "userTag": 0}


#: NDAttrDataType_t -> pvData type code of the attribute's ``any`` value
ATTR_CODES = dict(
    zip(
        ("INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64"),
        "bBhHiIlL",
        strict=True,
    ),
    FLOAT32="f",
    FLOAT64="d",
    STRING="s",
)


def _attribute_value(datatype: str, value: Any) -> tuple[str, Any]:
    """(type code, value) for an NTAttribute ``any`` (the real IOC sends ColorMode as int)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    code = ATTR_CODES.get(datatype)
    if code is None:  # UNDEFINED: from the Python type
        code = "s" if isinstance(value, str) else "d" if isinstance(value, float) else "l"
    if code == "s":
        return code, str(value)
    return code, float(value) if code in "fd" else int(value)


@functools.cache
def ntndarray_type() -> Any:
    """The NTNDArray structure NDPluginPva (ADCore R3-14) serves, field for field."""
    from p4p import Type

    time_t = ("S", "time_t", [("secondsPastEpoch", "l"), ("nanoseconds", "i"), ("userTag", "i")])
    members = [
        (name + "Value", "a" + code)
        for name, code in zip(
            ("boolean", "byte", "short", "int", "long", "ubyte", "ushort", "uint", "ulong"),
            "?bhilBHIL",
            strict=True,
        )
    ] + [("floatValue", "af"), ("doubleValue", "ad")]
    return Type(
        [
            ("value", ("U", None, members)),
            ("codec", ("S", "codec_t", [("name", "s"), ("parameters", "v")])),
            ("compressedSize", "l"),
            ("uncompressedSize", "l"),
            (
                "dimension",
                (
                    "aS",
                    "dimension_t",
                    [
                        ("size", "i"),
                        ("offset", "i"),
                        ("fullSize", "i"),
                        ("binning", "i"),
                        ("reverse", "?"),
                    ],
                ),
            ),
            ("uniqueId", "i"),
            ("dataTimeStamp", time_t),
            (
                "attribute",
                (
                    "aS",
                    "epics:nt/NTAttribute:1.0",
                    [
                        ("name", "s"),
                        ("value", "v"),
                        ("descriptor", "s"),
                        ("sourceType", "i"),
                        ("source", "s"),
                    ],
                ),
            ),
            ("descriptor", "s"),
            ("alarm", ("S", "alarm_t", [("severity", "i"), ("status", "i"), ("message", "s")])),
            ("timeStamp", time_t),
            (
                "display",
                (
                    "S",
                    "display_t",
                    [
                        ("limitLow", "d"),
                        ("limitHigh", "d"),
                        ("description", "s"),
                        ("format", "s"),
                        ("units", "s"),
                    ],
                ),
            ),
        ],
        id="epics:nt/NTNDArray:1.0",
    )


def ntndarray(array: NDArray | None) -> Any:
    """The NTNDArray Value NDPluginPva sends for ``array`` (None: the empty one served
    before the first array).  Needs p4p."""
    from p4p import Value

    if array is None:
        return Value(ntndarray_type(), {"value": ("ubyteValue", np.zeros(0, np.uint8))})
    data = np.ascontiguousarray(array.data)
    member, scalar_type = UNION[data.dtype]
    attributes = []
    for attr in array.attributes.values():
        source_type = attr.source_type if attr.source_type in SOURCE_TYPES else SOURCE_TYPES[0]
        attributes.append(
            {
                "name": attr.name,
                "value": _attribute_value(attr.datatype, attr.value),
                "descriptor": attr.description,
                "sourceType": SOURCE_TYPES.index(source_type),
                "source": attr.source or SOURCE_NAMES.get(source_type, ""),
            }
        )
    posix = array.epics_ts_sec + POSIX_TIME_AT_EPICS_EPOCH + array.epics_ts_nsec * 1e-9
    return Value(
        ntndarray_type(),
        {
            "value": (member, data.reshape(-1)),
            "codec": {"name": "", "parameters": ("i", scalar_type)},
            "compressedSize": data.nbytes,
            "uncompressedSize": data.nbytes,
            "dimension": [
                {
                    "size": d.size,
                    "offset": d.offset,
                    "fullSize": d.size,
                    "binning": d.binning,
                    "reverse": bool(d.reverse),
                }
                for d in array.dims
            ],
            "uniqueId": array.unique_id,
            "dataTimeStamp": _stamp(posix),
            "attribute": attributes,
            # every field is sent, as from the real IOC (pvget -v lists them all)
            "descriptor": "",
            "alarm": {"severity": 0, "status": 0, "message": ""},
            "timeStamp": _stamp(time.time()),
            "display": {
                "limitLow": 0.0,
                "limitHigh": 0.0,
                "description": "",
                "format": "",
                "units": "",
            },
        },
    )


class NDPva(PluginDriver):
    plugin_type = "NDPluginPva"
    templates = ("NDPva",)

    def __init__(self, *args: Any, pv_name: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pv_name = pv_name
        #: the p4p SharedPV, once the pvAccess server runs
        self.shared_pv: Any = None

    @classmethod
    def instance_options(cls, definition: dict[str, Any], ioc: Any) -> dict[str, Any]:
        return {"pv_name": ioc.prefix + definition["suffix"] + definition.get("pv", "Image")}

    def init_params(self) -> None:
        super().init_params()
        self.set("PV_NAME", self.pv_name)

    def process(self, array: NDArray) -> None:
        self.count_array()
        pv = self.shared_pv
        if pv is not None:
            try:
                pv.post(ntndarray(array))
            except Exception as exc:  # a bad frame must not stop the plugin
                self.log.error("posting array %d to %s: %s", array.unique_id, self.pv_name, exc)
        self.emit(array)


class PvaServer:
    """p4p's pvAccess server for the NDPva plugins of one IOC.

    Ports as the real IOC's run.sh derives them: UDP search/beacon on CA+2,
    TCP on CA+3, on the same interfaces as Channel Access (loopback by default).
    """

    def __init__(self, plugins: list[NDPva], ca_port: int, interfaces: list[str]) -> None:
        from p4p.server import Server
        from p4p.server.thread import SharedPV

        providers: dict[str, Any] = {}
        for plugin in plugins:
            # no nt= wrapper: the plugin posts complete NTNDArray Values
            pv = SharedPV(initial=ntndarray(None))
            providers[plugin.pv_name] = pv
            plugin.shared_pv = pv
        self.udp_port, self.tcp_port = ca_port + 2, ca_port + 3
        addresses = " ".join(interfaces)
        self.server = Server(
            providers=[providers],
            conf={
                "EPICS_PVAS_INTF_ADDR_LIST": addresses,
                "EPICS_PVAS_BEACON_ADDR_LIST": addresses,
                "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
                "EPICS_PVAS_BROADCAST_PORT": str(self.udp_port),
                "EPICS_PVAS_SERVER_PORT": str(self.tcp_port),
            },
            useenv=False,
        )
        self.plugins = plugins

    def stop(self) -> None:
        for plugin in self.plugins:
            plugin.shared_pv = None
        self.server.stop()


def start_pva_server(plugins: list[Any], ca_port: int, interfaces: list[str]) -> PvaServer | None:
    """Serve the NDPva plugins' images over pvAccess; None (and a logged reason) if not."""
    pva = [p for p in plugins if isinstance(p, NDPva)]
    if not pva:
        return None
    try:
        return PvaServer(pva, ca_port, interfaces)
    except ImportError:
        log.warning("p4p is not installed: %s not served over pvAccess", pva[0].pv_name)
    except Exception as exc:  # e.g. the port is taken: CA goes on without pvAccess
        log.error("pvAccess server on ports %d/%d: %s", ca_port + 2, ca_port + 3, exc)
    return None
