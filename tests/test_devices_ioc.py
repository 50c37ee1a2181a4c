"""The device layer against the simulated IOC, over Channel Access (real files, real
databroker).  Uses the session ``ioc`` fixture; small 64x48 frames."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ioc

X, Y = 64, 48


@pytest.fixture(scope="module")
def RE():
    from bluesky import RunEngine

    return RunEngine({})


@pytest.fixture
def db(RE):
    import databroker

    broker = databroker.temp()
    token = RE.subscribe(broker.v1.insert)
    yield broker.v2  # run = db[-1]; run.primary.read()
    RE.unsubscribe(token)


def _configure_cam(det, mode="Offset&Noise"):
    cam = det.cam
    for sig, value in (
        (cam.size.size_x, X),
        (cam.size.size_y, Y),
        (cam.bin_x, 1),
        (cam.bin_y, 1),
        (cam.data_type, "UInt8"),
        (cam.color_mode, "Mono"),
        (cam.acquire_time, 0.001),
        (cam.acquire_period, 0.0),
        (cam.sim_mode, mode),
        (cam.noise, 50),
        (cam.offset, 20),
    ):
        sig.set(value).wait(10)


@pytest.fixture
def det(ioc, tmp_path):
    from adtoolkit.devices import make_detector

    det = make_detector(
        ioc.prefix,
        name="det",
        plugins=("hdf1", "image1"),
        write_path=str(ioc.write_root) + "/%Y/%m/%d/",
        read_path=str(ioc.read_root) + "/%Y/%m/%d/",
        connection_timeout=30,  # a loaded 2-core machine (two IOCs) can be slow to connect
    )
    _configure_cam(det)
    # also read the frame over CA (image1:ArrayData) in the same events, to compare
    det.image1.kind = "normal"
    det.image1.read_attrs = ["array_data"]
    yield det
    det.unstage()
    det.destroy()


def _ca_frames(table, key="det_image1_array_data"):
    return [np.asarray(v)[: X * Y].reshape(Y, X) for v in table[key]]


def test_factory_connects_and_validates(det):
    assert det.connected  # what make_detector created: the signals in use
    # the other records stay lazy; asking for all connects them concurrently
    det.wait_for_connection(all_signals=True, timeout=30)
    assert all(w.item.connected for w in det.walk_signals(include_lazy=True))
    assert det.missing_plugins() == []
    det.validate_asyn_ports()
    assert det.cam.acquire_busy.connected and det.cam.wait_for_plugins.connected


def test_count_gives_the_frames_the_ioc_generated(det, RE, db):
    import bluesky.plans as bp

    (uid,) = RE(bp.count([det], num=3))
    run = db[-1]
    data = run.primary.read()
    images = data["det_image"].values
    assert images.shape == (3, 1, Y, X)
    assert images.dtype == np.uint8
    ca = _ca_frames(data)
    for i in range(3):
        np.testing.assert_array_equal(images[i, 0], ca[i])
    # noise makes every frame different: the order is checked too
    assert not np.array_equal(images[0, 0], images[1, 0])
    # the file exists where the workstation expects it, named as the IOC reported it
    assert Path(det.hdf1.read_file_name).exists()


def test_several_frames_per_trigger(det, RE, db):
    import bluesky.plans as bp

    det.frames_per_point = 3
    RE(bp.count([det], num=2))
    data = db[-1].primary.read()
    images = data["det_image"].values
    assert images.shape == (2, 3, Y, X)
    ca = _ca_frames(data)
    for i in range(2):  # image1 holds the last frame of each trigger
        np.testing.assert_array_equal(images[i, 2], ca[i])
    flat = images.reshape(6, Y, X)
    assert len({f.tobytes() for f in flat}) == 6


def test_stream_fly_scan(det, RE, db):
    det.image1.kind = "omitted"
    RE(_fly(det, 5))
    run = db[-1]
    stream = run[det.name].read()
    images = stream["det_image"].values
    assert images.shape == (5, 1, Y, X)
    assert len({f.tobytes() for f in images}) == 5
    last = np.asarray(det.image1.array_data.get())[: X * Y].reshape(Y, X)
    np.testing.assert_array_equal(images[-1, 0], last)
    assert det._staged.name == "no"
    assert det.hdf1.capture.get() == 0


def _fly(det, n):
    """kickoff / complete / collect: n frames streamed into one file."""
    import bluesky.plan_stubs as bps
    import bluesky.preprocessors as bpp

    det.stream_frames = n

    @bpp.run_decorator()
    def inner():
        yield from bps.kickoff(det, wait=True)
        yield from bps.complete(det, wait=True)
        yield from bps.collect(det)

    return inner()


def test_lazy_open_file_name_is_right(ioc, RE, db):
    import bluesky.plans as bp

    from adtoolkit.devices import make_detector

    det = make_detector(
        ioc.prefix,
        name="lazy",
        plugins="hdf1",
        write_path=str(ioc.write_root) + "/lazy",
        lazy_open=True,
    )
    try:
        _configure_cam(det)
        RE(bp.count([det], num=2))
        assert det.hdf1.full_file_name.get() == det.hdf1.ioc_file_name
        assert "-000001" not in det.hdf1.ioc_file_name
        images = db[-1].primary.read()["lazy_image"].values
        assert images.shape == (2, 1, Y, X)
    finally:
        det.destroy()


def test_epics_file_naming(ioc, RE, db):
    import bluesky.plans as bp

    from adtoolkit.devices import make_detector

    det = make_detector(
        ioc.prefix,
        name="named",
        plugins="hdf1",
        write_path=str(ioc.write_root) + "/named",
        naming="epics",
    )
    try:
        _configure_cam(det)
        det.hdf1.file_name.set("scan").wait(5)
        det.hdf1.file_number.set(41).wait(5)
        RE(bp.count([det], num=1))
        assert det.hdf1.ioc_file_name == str(ioc.write_root) + "/named/scan_000041.h5"
        assert (Path(ioc.read_root) / "named" / "scan_000041.h5").exists()
        assert det.hdf1.file_number.get() == 42
        assert db[-1].primary.read()["named_image"].shape == (1, 1, Y, X)
    finally:
        det.destroy()


def test_unstage_restores_after_abort(det, RE):
    import bluesky.plan_stubs as bps

    before = {
        "image_mode": det.cam.image_mode.get(),
        "num_images": det.cam.num_images.get(),
        "file_write_mode": det.hdf1.file_write_mode.get(),
        "num_capture": det.hdf1.num_capture.get(),
        "file_template": det.hdf1.file_template.get(),
        "capture": det.hdf1.capture.get(),
    }

    class Abort(Exception):
        pass

    def plan():
        yield from bps.stage(det)
        yield from bps.trigger(det, wait=True)
        raise Abort

    with pytest.raises(Abort):
        RE(plan())
    after = {
        "image_mode": det.cam.image_mode.get(),
        "num_images": det.cam.num_images.get(),
        "file_write_mode": det.hdf1.file_write_mode.get(),
        "num_capture": det.hdf1.num_capture.get(),
        "file_template": det.hdf1.file_template.get(),
        "capture": det.hdf1.capture.get(),
    }
    assert after == before


def test_stage_fails_early_when_the_ioc_cannot_write(ioc, tmp_path):
    from adtoolkit.devices import FilePathError, make_detector

    blocker = Path(ioc.write_root) / "a_file"
    blocker.write_text("not a directory")
    det = make_detector(
        ioc.prefix,
        name="nowrite",
        plugins="hdf1",
        write_path=str(ioc.write_root) + "/a_file/sub",
        read_path="/ws/view/a_file/sub",
    )
    try:
        with pytest.raises(FilePathError) as err:
            det.stage()
        msg = str(err.value)
        assert str(ioc.write_root) + "/a_file/sub/" in msg
        assert "/ws/view/a_file/sub/" in msg
        assert det.hdf1.capture.get() == 0
    finally:
        det.destroy()


def test_bad_plugin_port_is_named(det):
    from adtoolkit.devices import PortError

    original = det.image1.nd_array_port.get()
    det.image1.nd_array_port.set("NOSUCHPORT").wait(5)
    try:
        assert det.missing_plugins() == ["NOSUCHPORT"]
        with pytest.raises(PortError, match="NOSUCHPORT"):
            det.validate_asyn_ports()
    finally:
        det.image1.nd_array_port.set(original).wait(5)


def test_priming_only_when_needed(ioc_factory, RE):
    import bluesky.plans as bp

    from adtoolkit.devices import make_detector
    from adtoolkit.devices.priming import needs_priming

    fresh = ioc_factory(prefix="adtp:")
    det = make_detector(
        fresh.prefix, name="p", plugins="hdf1", write_path=str(fresh.write_root) + "/"
    )
    try:
        _configure_cam(det)
        assert needs_priming(det.cam, det.hdf1)  # a fresh IOC: the plugin saw nothing
        RE(bp.count([det], num=1))  # primes automatically
        assert not needs_priming(det.cam, det.hdf1)
        counter = det.cam.array_counter.get()
        RE(bp.count([det], num=2))
        assert det.cam.array_counter.get() == counter + 2  # no priming frame this time
        det.cam.size.size_x.set(32).wait(5)
        assert needs_priming(det.cam, det.hdf1)  # shape change noticed from settings
        RE(bp.count([det], num=1))
        assert det.hdf1.array_size.width.get() == 32
    finally:
        det.destroy()


def test_priming_a_plugin_holding_another_shape(ioc_factory, RE, db):
    """A new detector object on a plugin primed at another size re-primes and its
    file takes the new frames.  (Regression: the priming wait took the first
    monitor event of a new subscription, which only repeats the current value, for
    the priming frame; the file then opened with the old size and every frame was
    refused as "Invalid frame".)"""
    import bluesky.plans as bp

    from adtoolkit.devices import make_detector

    fresh = ioc_factory(prefix="adtq:")
    path = str(fresh.write_root) + "/"
    first = make_detector(fresh.prefix, name="det", plugins="hdf1", write_path=path)
    try:
        RE(bp.count([first], num=1))  # the plugin now holds a full-size frame
        assert first.hdf1.array_size.width.get() != X
    finally:
        first.destroy()
    det = make_detector(fresh.prefix, name="det", plugins="hdf1", write_path=path)
    try:
        _configure_cam(det)
        RE(bp.count([det], num=2))
        images = db[-1].primary.read()["det_image"].values
        assert images.shape == (2, 1, Y, X)
        assert det.hdf1.write_message.get() == ""
    finally:
        det.destroy()


def test_caproto_control_layer_end_to_end(ioc, tmp_path):
    """ophyd's caproto control layer must be chosen before any device exists: subprocess."""
    script = textwrap.dedent(
        f"""
        import ophyd
        ophyd.set_cl("caproto")
        import numpy as np, databroker, bluesky.plans as bp
        from bluesky import RunEngine
        from adtoolkit.devices import make_detector
        det = make_detector({ioc.prefix!r}, name="det", plugins=("hdf1", "image1"),
                            write_path={str(ioc.write_root) + "/cap"!r})
        for sig, v in ((det.cam.size.size_x, {X}), (det.cam.size.size_y, {Y}),
                       (det.cam.acquire_time, 0.001), (det.cam.sim_mode, "Offset&Noise"),
                       (det.cam.noise, 50)):
            sig.set(v).wait(10)
        det.image1.kind = "normal"; det.image1.read_attrs = ["array_data"]
        broker = databroker.temp(); RE = RunEngine({{}}); RE.subscribe(broker.v1.insert)
        RE(bp.count([det], num=3))
        data = broker.v2[-1].primary.read()
        imgs = data["det_image"].values
        ca = [np.asarray(v)[:{X * Y}].reshape({Y}, {X}) for v in data["det_image1_array_data"]]
        assert all(np.array_equal(imgs[i, 0], ca[i]) for i in range(3))
        print("CL", ophyd.get_cl().name, imgs.shape)
        """
    )
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "CL caproto (3, 1, 48, 64)" in proc.stdout


def test_restoring_empty_strings(ioc_factory):
    """ADCore boots FilePath/FileName/FileTemplate empty; unstage must put "" back."""
    from adtoolkit.devices import make_detector

    fresh = ioc_factory(prefix="adte:")  # boots with FilePath/FileName/FileTemplate ""
    det = make_detector(
        fresh.prefix,
        name="e",
        plugins="hdf1",
        write_path=str(fresh.write_root) + "/",
        lazy_open=True,
    )
    try:
        det.stage()
        assert det.hdf1.file_template.get() != ""
        det.unstage()  # StagingError naming the records if the IOC refused ""
        assert det.hdf1.file_template.get() == ""
        assert det.hdf1.file_name.get() == ""
    finally:
        det.destroy()


def test_file_missing_on_the_workstation_names_both_paths(ioc, RE, tmp_path):
    import bluesky.plans as bp

    from adtoolkit.devices import StagingError, make_detector

    # the workstation "mount" of the IOC's directory is wrong: files land elsewhere
    det = make_detector(
        ioc.prefix,
        name="wrongmount",
        plugins="hdf1",
        write_path=str(ioc.write_root) + "/mnt/%Y",
        read_path=str(tmp_path) + "/mnt/%Y",
    )
    try:
        _configure_cam(det)
        with pytest.raises(StagingError) as err:
            RE(bp.count([det], num=1))
        msg = str(err.value)
        assert det.hdf1.ioc_file_name in msg  # the IOC path
        assert str(tmp_path) in msg  # the workstation path
        assert "mapping" in msg
        assert Path(det.hdf1.ioc_file_name).exists()  # the IOC did write it
        assert det.hdf1.capture.get() == 0
    finally:
        det.destroy()


@pytest.mark.parametrize("number", [0, 5])
def test_file_number_is_restored_after_a_uuid_named_run(det, RE, number):
    """AutoIncrement moves FileNumber when the file closes; unstage puts it back, also
    when stage found it already at the value it wanted (0) and wrote nothing."""
    import bluesky.plans as bp

    det.hdf1.file_number.set(number).wait(10)
    RE(bp.count([det], num=1))
    assert det.hdf1.file_number.get(use_monitor=False) == number
