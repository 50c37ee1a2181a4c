"""read_many: the values of many signals in one round trip, exactly as ``get`` gives them.

Checked against ophyd's own ``get(use_monitor=False)`` on every signal of a detector
(enums, strings, char waveforms, numbers, arrays; readbacks and setpoints) served by
the simulated IOC.
"""

from __future__ import annotations

import numpy as np
import pytest
from ophyd import Signal

from adtoolkit.devices.batchread import read_many


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def test_soft_signals_are_read_the_ordinary_way():
    a, b = Signal(name="a", value=3), Signal(name="b", value="text")
    assert read_many([a, b]) == [3, "text"]
    assert read_many([]) == []


def test_as_string_needs_one_entry_per_signal():
    with pytest.raises(ValueError, match="one entry per signal"):
        read_many([Signal(name="a", value=1)], as_string=[True, False])


@pytest.fixture(scope="module")
def all_signals(ioc):
    from ophyd.signal import EpicsSignalBase

    from adtoolkit.devices import make_detector

    det = make_detector(
        ioc.prefix,
        name="bdet",
        plugins=("hdf1", "image1"),
        write_path=str(ioc.write_root) + "/",
        connect="all",
        connection_timeout=30,
    )
    yield [w.item for w in det.walk_signals() if isinstance(w.item, EpicsSignalBase)]
    det.destroy()


def _compare(sigs, batch, read):
    """Each batched value equals ``read(sig)`` before or after it (rates may move)."""
    before = [read(s) for s in sigs]
    values = batch()
    after = [read(s) for s in sigs]
    wrong = [
        (s.name, v, b)
        for s, v, b, a in zip(sigs, values, before, after, strict=True)
        if not (_same(v, b) or _same(v, a))
    ]
    assert not wrong, wrong[:5]


@pytest.mark.ioc
@pytest.mark.parametrize("as_string", [None, True, False])
def test_values_equal_ophyds_get(all_signals, as_string):
    kwargs = {} if as_string is None else {"as_string": as_string}
    kinds = {type(s.get(use_monitor=False)) for s in all_signals}
    assert {str, int, float, np.ndarray} <= kinds  # every kind of value is covered
    _compare(
        all_signals,
        lambda: read_many(all_signals, as_string=as_string),
        lambda s: s.get(use_monitor=False, **kwargs),
    )


@pytest.mark.ioc
def test_setpoints_equal_ophyds_get_setpoint(all_signals):
    sigs = [s for s in all_signals if getattr(s, "setpoint_pvname", s.pvname) != s.pvname]
    assert len(sigs) > 50
    _compare(
        sigs,
        lambda: read_many(sigs, setpoint=True),
        lambda s: s.get_setpoint(use_monitor=False),
    )


@pytest.mark.ioc
def test_values_are_read_after_earlier_writes(all_signals):
    """Not from a monitor: a value written (put completed) just before is what is read."""
    by_name = {s.attr_name: s for s in all_signals if s.parent.name == "bdet_hdf1"}
    file_name, file_number = by_name["file_name"], by_name["file_number"]
    original = read_many([file_name, file_number])
    try:
        for i in range(5):
            file_name.put(f"batch_{i}", wait=True)
            file_number.put(100 + i, wait=True)
            assert read_many([file_name, file_number]) == [f"batch_{i}", 100 + i]
    finally:
        file_name.put(original[0], wait=True)
        file_number.put(original[1], wait=True)
