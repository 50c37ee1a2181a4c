"""Stage ordering and restoring (pure unit tests on ophyd fake devices, no IOC)."""

from __future__ import annotations

import itertools
from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ophyd.sim import make_fake_device

from adtoolkit.devices import ConfigurationError, StageSigs, StagingError
from adtoolkit.devices.factory import make_detector
from adtoolkit.devices.settings import validate_value

FILE_KEYS = [
    "enable",
    "blocking_callbacks",
    "file_name",
    "file_template",
    "num_capture",
    "file_write_mode",
    "auto_save",
    "lazy_open",
    "capture",
    "file_path",
    "create_directory",
]


@settings(max_examples=200, deadline=None)
@given(st.permutations(FILE_KEYS))
def test_stage_sigs_order_is_enforced_whatever_the_insertion_order(keys):
    sigs = StageSigs()
    for k in keys:
        sigs[k] = 1
    order = list(sigs)
    assert order[0] == "create_directory"
    assert order[1] == "file_path"
    assert order[-1] == "capture"
    # everything else keeps the user's order
    middle = [k for k in keys if k not in ("create_directory", "file_path", "capture")]
    assert order[2:-1] == middle
    assert [k for k, _ in sigs.items()] == order
    assert len(sigs.values()) == len(order)


def test_order_holds_after_move_to_end_and_update():
    sigs = StageSigs([("capture", 1), ("file_path", "/x/")])
    sigs.move_to_end("capture", last=False)  # what a user might try
    sigs.update({"create_directory": -2, "parent.cam.acquire": 0})
    assert list(sigs) == ["create_directory", "file_path", "parent.cam.acquire", "capture"]


def test_plain_dict_assignment_is_converted():
    det = make_detector("FAKE:", name="det", plugins="hdf1", write_path="/tmp/x", connect=False)
    det.hdf1.stage_sigs = OrderedDict(
        [("capture", 1), ("create_directory", -1), ("file_path", "/a/")]
    )
    assert isinstance(det.hdf1.stage_sigs, StageSigs)
    assert list(det.hdf1.stage_sigs) == ["create_directory", "file_path", "capture"]


def _fake_detector(tmp_path, **kwargs):
    real = make_detector(
        "FAKE:",
        name="det",
        plugins=("hdf1", "image1"),
        write_path=str(tmp_path / "%Y"),
        connect=False,
        **kwargs,
    )
    cls = make_fake_device(type(real))
    det = cls("FAKE:", name="det")
    det.hdf1.configure_files(real.hdf1.paths, lazy_open=True)
    for p in (det.hdf1, det.image1):
        p.stage_sigs.pop("parent.cam.array_callbacks", None)
    enums = {
        "cam.image_mode": ["Single", "Multiple", "Continuous"],
        "cam.wait_for_plugins": ["No", "Yes"],
        "cam.array_callbacks": ["Disable", "Enable"],
        "cam.acquire": ["Done", "Acquire"],
        "hdf1.auto_increment": ["No", "Yes"],
        "hdf1.auto_save": ["No", "Yes"],
        "hdf1.file_write_mode": ["Single", "Capture", "Stream"],
        "hdf1.lazy_open": ["No", "Yes"],
        "hdf1.capture": ["Done", "Capture"],
        "hdf1.enable": ["Disable", "Enable"],
        "hdf1.blocking_callbacks": ["No", "Yes"],
        "image1.enable": ["Disable", "Enable"],
        "image1.blocking_callbacks": ["No", "Yes"],
    }
    for dotted, strs in enums.items():
        sig = getattr(det, dotted)
        sig.sim_set_enum_strs(strs)
        sig.sim_put(0)
    for dotted, value in {
        "hdf1.file_name": "old",
        "hdf1.file_template": "%s%s.h5",
        "hdf1.file_path": "/old/",
        "hdf1.file_path_exists": 1,
        "hdf1.full_file_name": "",
        "hdf1.create_directory": 0,
        "hdf1.num_capture": 1,
        "hdf1.file_number": 7,
        "cam.num_images": 5,
        "cam.acquire_time": 0.1,
        "cam.acquire_period": 0.2,
    }.items():
        getattr(det, dotted).sim_put(value)
    return det


def _record_puts(det):
    log = []
    counter = itertools.count()
    for walk in det.walk_signals(include_lazy=True):
        sig = walk.item

        def cb(value=None, _name=walk.dotted_name, **kw):
            log.append((next(counter), _name, value))

        sig.subscribe(cb, run=False)
    return log


def _snapshot(det):
    return {
        w.dotted_name: w.item.get()
        for w in det.walk_signals(include_lazy=True)
        if hasattr(w.item, "sim_put")  # the fake EPICS signals, not derived ones
    }


def test_fake_stage_writes_in_the_enforced_order_and_unstage_restores(tmp_path):
    det = _fake_detector(tmp_path)
    # a user adds settings in the "wrong" order
    det.hdf1.stage_sigs["capture"] = 1
    det.hdf1.stage_sigs["num_capture"] = 0
    before = _snapshot(det)
    log = _record_puts(det)
    det.stage()
    hdf_order = [name for _, name, _ in log if name.startswith("hdf1.")]
    assert hdf_order.index("hdf1.create_directory") < hdf_order.index("hdf1.file_path")
    assert hdf_order[-1] == "hdf1.capture"
    assert det.hdf1.file_path.get().endswith("/")
    assert det.cam.image_mode.get() == 1  # Multiple
    assert det.cam.wait_for_plugins.get(as_string=True) == "Yes"
    det.unstage()
    after = _snapshot(det)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert changed == {}


def test_unstage_restores_everything_even_if_one_restore_fails(tmp_path):
    det = _fake_detector(tmp_path)
    before = _snapshot(det)
    det.stage()

    # the IOC refuses to take back the old file template
    def refuse(value, *args, **kwargs):
        raise OSError("put refused by the IOC")

    det.hdf1.file_template.sim_set_putter(refuse)
    with pytest.raises(StagingError) as err:
        det.unstage()
    assert "FileTemplate" in str(err.value) or "file_template" in str(err.value)
    det.hdf1.file_template.sim_set_putter(None)
    after = _snapshot(det)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"hdf1.file_template"}


def test_failed_stage_restores_what_was_applied(tmp_path):
    det = _fake_detector(tmp_path)
    det.hdf1.file_path_exists.sim_put(0)  # IOC says: directory does not exist
    before = _snapshot(det)
    with pytest.raises(OSError) as err:
        det.stage()
    msg = str(err.value)
    assert "FilePathExists_RBV" in msg and str(tmp_path) in msg
    after = _snapshot(det)
    assert {k for k in before if before[k] != after[k]} <= {"hdf1.file_path_exists"}


def test_runengine_abort_unstages_and_restores(tmp_path):
    import bluesky.plan_stubs as bps
    from bluesky import RunEngine
    from bluesky.utils import FailedStatus  # noqa: F401 - imported for clarity of intent

    det = _fake_detector(tmp_path)
    before = _snapshot(det)
    RE = RunEngine({}, call_returns_result=True)

    def plan():
        yield from bps.stage(det)
        raise KeyboardInterrupt_like("user abort")

    class KeyboardInterrupt_like(RuntimeError):
        pass

    with pytest.raises(KeyboardInterrupt_like):
        RE(plan())
    after = _snapshot(det)
    assert {k for k in before if before[k] != after[k]} == set()
    assert det._staged.name == "no"


def test_wrong_value_is_refused_before_anything_is_written(tmp_path):
    det = _fake_detector(tmp_path)
    det.hdf1.stage_sigs["zlevel"] = "high"  # not a number
    det.hdf1.stage_sigs.move_to_end("zlevel")  # even listed last, it is checked first
    before = _snapshot(det)
    log = _record_puts(det)
    with pytest.raises(ConfigurationError, match="'high'"):
        det.hdf1.stage()
    assert [e for e in log if e[1].startswith("hdf1.")] == []
    assert _snapshot(det) == before


def test_validate_value_messages(tmp_path):
    det = _fake_detector(tmp_path)
    with pytest.raises(ConfigurationError, match="out of range"):
        validate_value(det.cam.image_mode, 7)
    with pytest.raises(ConfigurationError, match="expected a number"):
        validate_value(det.cam.acquire_time, "fast")
    assert validate_value(det.cam.image_mode, "Multiple") == "Multiple"
