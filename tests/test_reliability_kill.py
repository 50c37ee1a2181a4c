"""The IOC is SIGKILLed in the middle of a streaming count, then restarted.

- The RunEngine gets a clear error within the detector's configured timeout, never hangs;
- the frames the IOC flushed (SWMR, NumFramesFlush=1) before it died can be read;
- after the IOC restarts on the same port the *same* detector object reconnects and the
  next count succeeds, read back through databroker, without restarting Python.
"""

from __future__ import annotations

import threading
import time

import h5py
import numpy as np
import pytest
from netns import ca_get, ca_put, wait_pv

pytestmark = [pytest.mark.ioc, pytest.mark.slow]

FRAMES = 300
PERIOD = 0.02
KILL_AFTER = 20  # frames captured before the kill


def _prepare(prefix: str) -> None:
    for pv, value in [("SizeX", 64), ("SizeY", 48), ("AcquireTime", 0.001)]:
        ca_put(f"{prefix}cam1:{pv}", value)
    ca_put(f"{prefix}cam1:AcquirePeriod", PERIOD)
    ca_put(f"{prefix}HDF1:SWMRMode", 1)
    ca_put(f"{prefix}HDF1:NumFramesFlush", 1)


def test_sigkill_mid_count_then_restart(ioc_factory):
    import bluesky.plans as bp
    import databroker
    from bluesky import RunEngine

    from adtoolkit.devices import make_detector

    handle = ioc_factory(prefix="kill:")
    sim = handle.process
    _prepare(handle.prefix)
    det = make_detector(
        handle.prefix,
        name="kdet",
        plugins=("hdf1",),
        write_path=f"{handle.write_root}/",
        read_path=f"{handle.read_root}/",
        frames_per_point=FRAMES,
    )
    RE = RunEngine({})
    catalog = databroker.temp().v2
    RE.subscribe(catalog.v1.insert)

    killed: dict[str, float] = {}
    errors: list[BaseException] = []

    def kill_mid_stream():
        try:
            wait_pv(handle.prefix + "HDF1:SWMRActive_RBV", lambda v: v == 1, timeout=60)
            killed["captured"] = wait_pv(
                handle.prefix + "HDF1:NumCaptured_RBV", lambda v: v >= KILL_AFTER, timeout=60
            )
            killed["t"] = time.monotonic()
            sim.process.kill()  # SIGKILL: no clean-up of any kind in the IOC
            sim.process.wait(timeout=10)
        except BaseException as exc:
            errors.append(exc)

    killer = threading.Thread(target=kill_mid_stream, daemon=True)
    killer.start()
    with pytest.raises(Exception) as info:
        RE(bp.count([det], num=1))
    t_error = time.monotonic()
    killer.join(timeout=30)
    assert not errors, errors
    assert "t" in killed, "the IOC was not killed: the count ended on its own"

    # -- a clear error, within the configured timeout
    message = f"{type(info.value).__name__}: {info.value}"
    print(f"error {t_error - killed['t']:.1f} s after SIGKILL: {message}")
    assert t_error - killed["t"] <= det.trigger_timeout + 30, (
        f"the error came {t_error - killed['t']:.1f} s after the kill; trigger timeout "
        f"{det.trigger_timeout} s"
    )
    assert "kdet" in message or handle.prefix in message, f"the error does not say what: {message}"

    # -- the flushed frames are readable
    path = det.hdf1.read_file_name
    with h5py.File(path, "r", swmr=True) as f:
        data = f["/entry/data/data"]
        assert data.shape[1:] == (48, 64)
        readable = data.shape[0]
        assert readable >= killed["captured"] - 1, (
            f"only {readable} frames readable; {killed['captured']} were captured at the kill"
        )
        frames = data[:readable]
    assert all(frame.any() for frame in frames), "a flushed frame reads back empty"
    print(f"{readable} frames readable after SIGKILL ({killed['captured']} captured at kill)")

    # -- restart on the same port: the same detector object works again
    sim.stop()
    sim._ready.clear()  # noqa: SLF001 (launcher keeps the first run's ready flag)
    sim.ready_line = ""
    sim.start()
    det.cam.acquire_busy.wait_for_connection(timeout=30)
    wait_pv(handle.prefix + "cam1:Acquire_RBV", lambda v: v == 0, timeout=30)
    _prepare(handle.prefix)
    det.frames_per_point = 3
    (uid,) = RE(bp.count([det], num=2))
    run = catalog[uid]
    images = run.primary.read()["kdet_image"].values
    assert images.shape == (2, 3, 48, 64)
    with h5py.File(det.hdf1.read_file_name, "r") as f:
        on_disk = f["/entry/data/data"][()]
    np.testing.assert_array_equal(images.reshape(6, 48, 64), on_disk)
    assert ca_get(handle.prefix + "HDF1:Capture_RBV") == 0
