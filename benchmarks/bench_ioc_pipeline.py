"""Benchmarks of the simulated IOC (figures, not tests).

    PYTHONPATH=src python benchmarks/bench_ioc_pipeline.py [--frames 1000] [--seconds 5]

1. cam -> plugin pipeline, in-process: frames/s of 1024x1024 UInt8 at
   AcquirePeriod 0 with one pass-through plugin (Trans1), blocking and queued.
   Target >= 1000 frames/s.
2. ``image1:ArrayData`` frames/s received by a pyepics monitor (IOC subprocess).
   Target >= 30 frames/s.
3. IOC process start -> ready line, and -> every PV connected by a client.
   Target < 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time


def pipeline_fps(frames: int, blocking: bool, size: int = 1024) -> tuple[float, int]:
    """Frames/s from Acquire=1 until AcquireBusy clears (WaitForPlugins=Yes)."""
    from adtoolkit.ioc.server import SimDetectorIOC

    ioc = SimDetectorIOC(prefix="bench:")
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run_loop() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(ioc.publisher.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run_loop, daemon=True)
    thread.start()
    started.wait(5)
    cam = ioc.cam
    settings = {
        "IMAGE_MODE": 1,
        "NIMAGES": frames,
        "ACQ_TIME": 0.0,
        "ACQ_PERIOD": 0.0,
        "SIZE_X": size,
        "SIZE_Y": size,
        "DATA_TYPE": 1,
        "WAIT_FOR_PLUGINS": 1,
    }
    for name, value in settings.items():
        cam._write(0, name, value)
    plugin = ioc.registry["TRANS1"]
    for name, value in {
        "ENABLE_CALLBACKS": 1,
        "BLOCKING_CALLBACKS": int(blocking),
        "QUEUE_SIZE": 100,
    }.items():
        plugin._write(0, name, value)
    image1 = ioc.registry["IMAGE1"]
    image1._write(0, "ENABLE_CALLBACKS", 0)
    ioc.start_drivers()
    # warm-up frame (computes the ramp base image)
    cam._write(0, "NIMAGES", 1)
    cam._write(0, "ACQUIRE", 1)
    while cam.get("ACQUIRE_BUSY"):
        time.sleep(0.001)
    cam._write(0, "NIMAGES", frames)
    before = plugin.get("ARRAY_COUNTER")
    t0 = time.perf_counter()
    cam._write(0, "ACQUIRE", 1)
    while cam.get("ACQUIRE_BUSY"):
        time.sleep(0.0005)
    dt = time.perf_counter() - t0
    processed = plugin.get("ARRAY_COUNTER") - before
    ioc.stop_drivers()

    async def shutdown() -> None:
        task = ioc.publisher._task
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
    return processed / dt, plugin.get("DROPPED_ARRAYS")


def image1_monitor_fps(seconds: float) -> tuple[float, float]:
    """ArrayData updates/s seen by a pyepics monitor; also the cam's frame rate."""
    from adtoolkit.ioc.launcher import SimulatedIOC

    with SimulatedIOC(prefix="benchi:") as ioc:
        os.environ.update(ioc.env)
        import epics

        p = "benchi:"
        for name, value in {
            "cam1:SizeX": 1024,
            "cam1:SizeY": 1024,
            "cam1:DataType": 1,
            "cam1:ImageMode": 2,
            "cam1:AcquireTime": 0.0,
            "cam1:AcquirePeriod": 0.01,
            "image1:EnableCallbacks": 1,
        }.items():
            epics.caput(p + name, value, wait=True, timeout=10)
        received = []
        pv = epics.PV(
            p + "image1:ArrayData",
            auto_monitor=True,
            count=1024 * 1024,
            callback=lambda value=None, **kw: received.append(len(value)),
        )
        pv.wait_for_connection(10)
        epics.caput(p + "cam1:Acquire", 1)
        time.sleep(1.0)  # let the monitor start
        n0, c0, t0 = len(received), epics.caget(p + "cam1:ArrayCounter_RBV"), time.perf_counter()
        time.sleep(seconds)
        n1, c1, t1 = len(received), epics.caget(p + "cam1:ArrayCounter_RBV"), time.perf_counter()
        epics.caput(p + "cam1:Acquire", 0, wait=True)
        sizes = set(received[n0:n1])
        assert sizes <= {1024 * 1024}, sizes
        pv.disconnect()
        return (n1 - n0) / (t1 - t0), (c1 - c0) / (t1 - t0)


def startup_times() -> tuple[float, float, int]:
    """(process start -> ready line, process start -> every PV connected, PV count)."""
    from caproto.threading.client import Context

    from adtoolkit.ioc.launcher import SimulatedIOC, client_env

    names = subprocess.run(
        [sys.executable, "-m", "adtoolkit", "ioc", "--prefix", "benchs:", "--list-pvs"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ioc = SimulatedIOC(prefix="benchs:", write_root=tempfile.mkdtemp())
    os.environ.update(client_env([ioc.port]))
    ctx = Context()
    t0 = time.perf_counter()
    ioc.start()
    ready = time.perf_counter() - t0
    pvs = ctx.get_pvs(*names, timeout=10)
    while not all(pv.connected for pv in pvs):
        time.sleep(0.005)
    connected = time.perf_counter() - t0
    ctx.disconnect()
    ioc.stop()
    return ready, connected, len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    for blocking in (True, False):
        fps, dropped = pipeline_fps(args.frames, blocking)
        kind = "blocking" if blocking else "queued  "
        print(
            f"pipeline 1024x1024 UInt8, 1 pass-through plugin ({kind}): {fps:7.0f} frames/s "
            f"(target >= 1000, ratio {fps / 1000:.2f}), dropped {dropped}"
        )
    mon, cam = image1_monitor_fps(args.seconds)
    print(
        f"image1:ArrayData to a pyepics monitor: {mon:6.1f} frames/s (target >= 30, ratio "
        f"{mon / 30:.2f}); cam produced {cam:.1f} frames/s"
    )
    ready, connected, n = startup_times()
    print(
        f"IOC start -> ready line {ready:.2f} s, -> all {n} PVs connected {connected:.2f} s "
        f"(target < 3 s, ratio {connected / 3:.2f})"
    )


if __name__ == "__main__":
    main()
