"""Benchmarks of the simulated IOC (figures, not tests).

    PYTHONPATH=src python benchmarks/bench_ioc_pipeline.py [--frames 1000] [--seconds 5]
        [--only pipeline startup monitor] [--repeat 3] [--baseline OLD_SRC]

``--baseline DIR`` measures another checkout's ``src`` (e.g. ``git archive main src``
unpacked in /tmp) side by side: the two run alternately, each round in a fresh
subprocess, so both see the same machine load; medians and ratios are printed.

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
import json
import os
import statistics
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


def measure(parts: list[str], frames: int, seconds: float) -> dict[str, float]:
    """One round of the selected measurements, in this process."""
    out: dict[str, float] = {}
    if "pipeline" in parts:
        for blocking in (True, False):
            fps, dropped = pipeline_fps(frames, blocking)
            kind = "blocking" if blocking else "queued"
            out[f"pipeline {kind} frames/s"] = fps
            out[f"pipeline {kind} dropped"] = dropped
    if "monitor" in parts:
        mon, cam = image1_monitor_fps(seconds)
        out["image1 monitor frames/s"] = mon
        out["cam frames/s during monitor"] = cam
    if "startup" in parts:
        ready, connected, n = startup_times()
        out["start -> ready s"] = ready
        out["start -> all PVs connected s"] = connected
        out["PV count"] = n
    return out


TARGETS = {
    "pipeline blocking frames/s": (1000, True),
    "pipeline queued frames/s": (1000, True),
    "image1 monitor frames/s": (30, True),
    "start -> all PVs connected s": (3.0, False),
}


def one_round(src: str, args: argparse.Namespace) -> dict[str, float]:
    """A round in a fresh interpreter importing adtoolkit from ``src``."""
    env = dict(os.environ, PYTHONPATH=src)
    cmd = [sys.executable, __file__, "--json", "--frames", str(args.frames)]
    cmd += ["--seconds", str(args.seconds), "--only", *args.only]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"{src}: benchmark failed\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(rounds: dict[str, list[dict[str, float]]]) -> None:
    labels = list(rounds)
    keys = [k for k in rounds[labels[0]][0] if not k.endswith("dropped") and k != "PV count"]
    header = f"{'measure':32s}" + "".join(f"{label:>28s}" for label in labels)
    print(header + ("   ratio new/old" if len(labels) == 2 else ""))
    for key in keys:
        line = f"{key:32s}"
        medians = []
        for label in labels:
            values = [r[key] for r in rounds[label]]
            med = statistics.median(values)
            medians.append(med)
            line += f"{med:10.2f} ({min(values):7.2f}-{max(values):7.2f})"
        if len(labels) == 2 and medians[0]:
            line += f"   {medians[1] / medians[0]:6.2f}"
        target = TARGETS.get(key)
        if target:
            goal, higher = target
            margin = medians[-1] / goal if higher else goal / medians[-1]
            line += f"   target {'>=' if higher else '<'} {goal}: margin x{margin:.2f}"
        print(line)
    for label in labels:
        dropped = [r.get("pipeline queued dropped", 0) for r in rounds[label]]
        print(f"{label}: queued dropped arrays per round {dropped}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--only",
        nargs="+",
        default=["pipeline", "monitor", "startup"],
        choices=["pipeline", "monitor", "startup"],
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds (medians are printed)")
    parser.add_argument("--baseline", help="another checkout's src directory to compare with")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.json:  # one round for a parent process
        print(json.dumps(measure(args.only, args.frames, args.seconds)))
        return
    here = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src")
    sources = {"current": os.environ.get("PYTHONPATH") or here}
    if args.baseline:
        sources = {"baseline": args.baseline, **sources}
    rounds: dict[str, list[dict[str, float]]] = {label: [] for label in sources}
    for _ in range(args.repeat):
        for label, src in sources.items():  # alternate: both see the same load
            rounds[label].append(one_round(src, args))
    print(f"median (min-max) of {args.repeat} round(s); load average {os.getloadavg()}")
    report(rounds)


if __name__ == "__main__":
    main()
