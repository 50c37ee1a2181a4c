"""Random values and strings put to the IOC's PVs: it survives and stays consistent.

Values go on the wire with caproto's client, so the IOC sees what a careless or hostile
client can really send: numbers far out of range, NaN and infinities, strings into
numeric and enum records (DBR_STRING), over-long strings and embedded NULs into CHAR
waveforms.  After every put the IOC must answer (accept or refuse with a CA error, never
hang), and its readbacks must stay within what the records allow; after each example a
frame is still acquired.  The fuzz runs on its own IOC so the session IOC is untouched.
"""

from __future__ import annotations

import math
import os
import time

import pytest
from caproto import CaprotoError, ChannelType, ErrorResponseReceived
from caproto.sync.client import write as sync_write
from caproto.threading.client import Context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: CI keeps the fuzz short; ADTOOLKIT_FUZZ_EXAMPLES=1000 for a deep run
EXAMPLES = int(os.environ.get("ADTOOLKIT_FUZZ_EXAMPLES", "40"))

pytestmark = [pytest.mark.ioc, pytest.mark.slow]

TIMEOUT = 5.0

#: setpoints (each with an _RBV) across cam and plugins: numbers, enums and strings
TARGETS = [
    "cam1:AcquireTime",
    "cam1:AcquirePeriod",
    "cam1:NumImages",
    "cam1:NumExposures",
    "cam1:ImageMode",
    "cam1:TriggerMode",
    "cam1:SizeX",
    "cam1:SizeY",
    "cam1:MinX",
    "cam1:BinX",
    "cam1:ReverseY",
    "cam1:DataType",
    "cam1:ColorMode",
    "cam1:SimMode",
    "cam1:Gain",
    "cam1:ArrayCounter",
    "cam1:NDAttributesFile",
    "HDF1:FilePath",
    "HDF1:FileName",
    "HDF1:FileTemplate",
    "HDF1:FileNumber",
    "HDF1:FileWriteMode",
    "HDF1:NumCapture",
    "HDF1:Compression",
    "HDF1:ZLevel",
    "HDF1:NumFramesChunks",
    "HDF1:CreateDirectory",
    "HDF1:TempSuffix",
    "HDF1:XMLFileName",
    "HDF1:QueueSize",
    "HDF1:NDArrayPort",
    "HDF1:EnableCallbacks",
    "Stats1:EnableCallbacks",
    "ROI1:MinX",
    "ROI1:SizeX",
    "ROI1:BinY",
]

numbers = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e-9, 1e300, -1e300, 2**31, -(2**31) - 1]),
)
texts = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=3000),
    st.sampled_from(["", "\0", "a\0b", "../" * 100, "%s%s%s%s%d%n", "%9999999d", "é" * 300]),
)
#: records without an _RBV twin (ADCore): their own value is the readback
NO_RBV = {"cam1:NDAttributesFile"}

writes = st.one_of(
    st.tuples(st.just("number"), numbers),
    st.tuples(st.just("string"), texts),
)


class Channel:
    """A PV with what its record allows: native type, element count, enum strings."""

    def __init__(self, ctx: Context, name: str, rbv: str) -> None:
        self.name = name
        self.pv, self.rbv = ctx.get_pvs(name, rbv, timeout=TIMEOUT)
        self.pv.wait_for_connection(timeout=TIMEOUT)
        self.rbv.wait_for_connection(timeout=TIMEOUT)
        reading = self.pv.read(data_type="control", timeout=TIMEOUT)
        self.type = self.pv.channel.native_data_type
        self.count = self.pv.channel.native_data_count
        self.enums = getattr(reading.metadata, "enum_strings", None)
        self.is_text = self.type == ChannelType.CHAR and self.count > 1

    def write(self, kind: str, value):
        """Send ``value``; None when accepted, else the CA error status the IOC answered."""
        if kind == "string":
            if self.is_text:
                data, dtype = value.encode("latin-1", "replace") + b"\0", ChannelType.CHAR
                data = list(data)
            else:
                data, dtype = [value.encode("latin-1", "replace")[:39]], ChannelType.STRING
        else:
            if isinstance(value, float) and self.type not in (
                ChannelType.DOUBLE,
                ChannelType.FLOAT,
            ):
                data, dtype = [value], ChannelType.DOUBLE  # the server must convert
            elif isinstance(value, int) and not -(2**31) <= value < 2**31:
                data, dtype = [float(value)], ChannelType.DOUBLE
            else:
                data = [value]
                dtype = ChannelType.DOUBLE if isinstance(value, float) else ChannelType.LONG
        # caproto's sync client raises on the IOC's error response (its threading client
        # would wait for a write response that never comes)
        for attempt in (1, 2):
            try:
                sync_write(self.name, data, data_type=dtype, notify=True, timeout=TIMEOUT)
            except ErrorResponseReceived as exc:
                return exc.args[0].status if exc.args else None
            except CaprotoError as exc:
                # the sync client opens a circuit per call; one that drops while the channel
                # is being created never carried the write, so send it once more (an IOC
                # that really stopped serving fails the second attempt too)
                if attempt == 2 or "during initialization" not in str(exc):
                    raise
                continue
            return None
        return None


def _rbv(channel: Channel, want: str | None = None):
    """The readback, once it settles (equal to ``want`` for text), within a timeout."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        reading = channel.rbv.read(timeout=TIMEOUT)
        value = reading.data
        if channel.is_text or channel.rbv.channel.native_data_type == ChannelType.CHAR:
            value = bytes(value).split(b"\0", 1)[0].decode("latin-1")
            if want is None or value == want or time.monotonic() > deadline:
                return value
        else:
            return value[0]
        time.sleep(0.02)


def check_consistent(channel: Channel, kind: str, value, status) -> None:
    accepted = status is None
    if channel.is_text:
        nelm = channel.rbv.channel.native_data_count
        if kind != "string":
            got = _rbv(channel)
        else:
            sent = value.encode("latin-1", "replace").split(b"\0", 1)[0].decode("latin-1")
            want = sent[: nelm - 1] if len(sent) < nelm else None
            if want and channel.name.endswith("FilePath"):
                # asynNDArrayDriver::checkPath: one trailing '/' stripped, then re-appended
                want = (want[:-1] if want.endswith("/") else want) + "/"
            got = _rbv(channel, want)
            if accepted and want is not None and len(sent) < nelm - 1:
                assert got == want, f"{channel.name}_RBV = {got!r} after put {sent!r}"
        assert "\0" not in got
        # a readback shows the driver's string (NELM - 1 characters and a NUL); an output
        # waveform read back itself keeps all NELM characters written, as on the real IOC
        keeps = nelm if channel.rbv.name == channel.pv.name else nelm - 1
        assert len(got) <= keeps, f"{channel.name}_RBV longer than its record"
    elif channel.enums:
        got = _rbv(channel)
        assert 0 <= int(got) < len(channel.enums), f"{channel.name}_RBV = {got} out of enum"
    elif channel.type == ChannelType.STRING:
        # a stringout record (e.g. TempSuffix): a number put to it is stored as its text
        got = _rbv(channel)
        assert isinstance(got, bytes), f"{channel.name}_RBV = {got!r} is not a string"
        assert len(got.split(b"\0", 1)[0]) <= 39, f"{channel.name}_RBV longer than its record"
    else:
        got = _rbv(channel)
        if channel.type in (ChannelType.LONG, ChannelType.INT):
            assert float(got).is_integer()
        if kind == "number" and isinstance(value, float) and not math.isfinite(value) and accepted:
            # an accepted NaN/inf must not turn an integer record into garbage
            assert channel.type in (ChannelType.DOUBLE, ChannelType.FLOAT) or math.isfinite(
                float(got)
            )


@pytest.fixture
def fuzz_ioc(ioc_factory):
    return ioc_factory(prefix="fuzz:")


@pytest.fixture
def channels(fuzz_ioc):
    ctx = Context()
    try:
        p = fuzz_ioc.prefix
        chans = {
            name: Channel(ctx, p + name, p + name + ("" if name in NO_RBV else "_RBV"))
            for name in TARGETS
        }
        yield fuzz_ioc.prefix, ctx, chans
    finally:
        ctx.disconnect()


def _acquire_one(ctx: Context, prefix: str) -> None:
    """Reset the cam to a small sane frame and check one frame is still produced."""
    names = ["Acquire", "ImageMode", "SizeX", "SizeY", "MinX", "MinY", "BinX", "BinY"]
    names += ["ReverseX", "ReverseY", "DataType", "ColorMode", "AcquireTime", "AcquirePeriod"]
    names += ["ArrayCallbacks", "NumImages", "NumExposures", "TriggerMode", "ArrayCounter_RBV"]
    pvs = dict(zip(names, ctx.get_pvs(*[f"{prefix}cam1:{n}" for n in names]), strict=True))
    sane = [
        ("Acquire", 0),
        ("ImageMode", 0),
        ("TriggerMode", 0),
        ("MinX", 0),
        ("MinY", 0),
        ("BinX", 1),
        ("BinY", 1),
        ("ReverseX", 0),
        ("ReverseY", 0),
        ("SizeX", 64),
        ("SizeY", 48),
        ("DataType", 1),
        ("ColorMode", 0),
        ("AcquireTime", 0.001),
        ("AcquirePeriod", 0.0),
        ("NumImages", 1),
        ("NumExposures", 1),
        ("ArrayCallbacks", 1),
    ]
    for name, value in sane:
        pvs[name].write([value], wait=True, timeout=TIMEOUT)
    before = pvs["ArrayCounter_RBV"].read(timeout=TIMEOUT).data[0]
    pvs["Acquire"].write([1], wait=True, timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while pvs["ArrayCounter_RBV"].read(timeout=TIMEOUT).data[0] <= before:
        assert time.monotonic() < deadline, "the cam no longer produces frames after the fuzz"
        time.sleep(0.02)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(st.tuples(st.sampled_from(TARGETS), writes), min_size=1, max_size=6))
def test_random_puts_leave_the_ioc_serving_and_consistent(channels, ops):
    prefix, ctx, chans = channels
    for name, (kind, value) in ops:
        channel = chans[name]
        status = channel.write(kind, value)
        check_consistent(channel, kind, value, status)
    _acquire_one(ctx, prefix)
