"""The simulated IOC against the real simDetector IOC (ADCore R3-14), side by side (figures, not tests).

    PYTHONPATH=src python benchmarks/bench_real_vs_sim.py [--frames 200] [--seconds 5]
        [--rounds 1] [--only hdf5 monitor startup]

Both IOCs run in this one process's run, with the same client code (pyepics for
the puts and the monitor, caproto's threading client to connect every record),
alternating sim and real in each round so both see the same machine load:

1. ``hdf5``: 1024x1024 UInt8 frames streamed into one HDF5 file (HDF1 Stream mode,
   WaitForPlugins=Yes so no frame is dropped): frames / (Acquire=1 -> file closed).
2. ``monitor``: ``image1:ArrayData`` frames/s received by a pyepics monitor
   (Continuous, AcquirePeriod 0).
3. ``startup``: process start -> every record of the IOC connected (each IOC's own
   record list: ``--list-pvs`` for ours, ``pvlist-13SIM1.txt`` for the real one).

Goal (issue 12): sim/real >= 1.0 on 1 and 2, sim/real start time <= 1.5.
The real IOC is ``../shared/real-adsim/real-adsim-runtime.tar.gz`` (or $ADTOOLKIT_REAL_ADSIM).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adtoolkit.ioc.launcher import SimulatedIOC, client_env, free_port
from adtoolkit.ioc.realioc import RealIOC, find_tarball, free_port_block

SIZE = 1024
SIM_PREFIX, REAL_PREFIX = "bsim:", "breal:"


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.002)


def _put_all(p: str, values: dict[str, object]) -> None:
    import epics

    for name, value in values.items():
        if not epics.caput(p + name, value, wait=True, timeout=30, connection_timeout=30):
            raise RuntimeError(f"put {p}{name}={value!r} failed")


def _cam_settings(image_mode: int, n: int, wait_for_plugins: int) -> dict[str, object]:
    return {
        "cam1:Acquire": 0,
        "cam1:SizeX": SIZE,
        "cam1:SizeY": SIZE,
        "cam1:MinX": 0,
        "cam1:MinY": 0,
        "cam1:BinX": 1,
        "cam1:BinY": 1,
        "cam1:DataType": "UInt8",
        "cam1:ColorMode": "Mono",
        "cam1:SimMode": "LinearRamp",
        "cam1:ImageMode": image_mode,
        "cam1:NumImages": n,
        "cam1:AcquireTime": 0.0,
        "cam1:AcquirePeriod": 0.0,
        "cam1:ArrayCallbacks": 1,
        "cam1:WaitForPlugins": wait_for_plugins,
    }


def hdf5_stream_fps(p: str, root: Path, frames: int) -> float:
    """Frames/s of 1024x1024 UInt8 streamed into one HDF5 file (Acquire -> file closed)."""
    import epics

    out = root / f"bench_{time.monotonic_ns()}"
    out.mkdir(parents=True)
    _put_all(p, _cam_settings(1, frames, 1))
    _put_all(
        p,
        {
            "HDF1:EnableCallbacks": 1,
            "HDF1:NDArrayPort": "SIM1",
            "HDF1:BlockingCallbacks": 1,  # the cam thread writes: no frame dropped
            "HDF1:FilePath": str(out) + "/",
            "HDF1:FileName": "stream",
            "HDF1:FileTemplate": "%s%s_%3.3d.h5",
            "HDF1:AutoIncrement": 1,
            "HDF1:FileWriteMode": "Stream",
            "HDF1:NumCapture": frames,
            "HDF1:Compression": "None",
            "HDF1:LazyOpen": 1,
        },
    )
    epics.caput(p + "HDF1:Capture", 1)  # busy: completes when the file is closed
    _wait(
        lambda: epics.caget(p + "HDF1:Capture_RBV", connection_timeout=30) == 1,
        10,
        p + "HDF1:Capture_RBV=1",
    )
    t0 = time.perf_counter()
    epics.caput(p + "cam1:Acquire", 1)
    try:
        _wait(
            lambda: epics.caget(p + "HDF1:Capture_RBV", connection_timeout=30) == 0,
            120,
            p + "HDF1:Capture_RBV=0",
        )
    except TimeoutError:
        state = {
            n: epics.caget(p + n, as_string=True, connection_timeout=30)
            for n in (
                "HDF1:NumCaptured_RBV",
                "HDF1:DroppedArrays_RBV",
                "HDF1:WriteMessage",
                "HDF1:ArrayCounter_RBV",
                "cam1:ArrayCounter_RBV",
                "cam1:DetectorState_RBV",
            )
        }
        raise RuntimeError(f"{p}: stream did not end: {state}") from None
    dt = time.perf_counter() - t0
    captured = epics.caget(p + "HDF1:NumCaptured_RBV", connection_timeout=30)
    _wait(
        lambda: epics.caget(p + "cam1:AcquireBusy", connection_timeout=30) == 0,
        30,
        p + "cam1:AcquireBusy=0",
    )
    _put_all(p, {"HDF1:EnableCallbacks": 0})
    if captured != frames:
        raise RuntimeError(f"{p}: {captured} of {frames} frames captured")
    files = list(out.glob("*.h5"))
    if len(files) != 1 or files[0].stat().st_size < frames * SIZE * SIZE:
        raise RuntimeError(f"{p}: expected one HDF5 file of {frames} frames, found {files}")
    return frames / dt


def monitor_fps(p: str, seconds: float, period: float = 0.0) -> float:
    """image1:ArrayData updates/s seen by a pyepics monitor (Continuous, AcquirePeriod ``period``)."""
    import epics

    _put_all(p, {**_cam_settings(2, 1, 0), "cam1:AcquirePeriod": period})
    _put_all(p, {"image1:EnableCallbacks": 1, "image1:NDArrayPort": "SIM1"})
    received: list[int] = []
    pv = epics.PV(
        p + "image1:ArrayData",
        auto_monitor=True,
        count=SIZE * SIZE,
        callback=lambda value=None, **kw: received.append(len(value)),
    )
    if not pv.wait_for_connection(30):
        raise RuntimeError(f"{p}image1:ArrayData did not connect")
    epics.caput(p + "cam1:Acquire", 1)
    try:
        _wait(lambda: len(received) >= 3, 20, f"{p}image1:ArrayData updates")
    except TimeoutError:
        state = {
            n: epics.caget(p + n, as_string=True, connection_timeout=30)
            for n in ("image1:ArrayCounter_RBV", "cam1:ArrayCounter_RBV", "cam1:Acquire")
        }
        raise RuntimeError(f"{p}: {len(received)} monitor updates; {state}") from None
    n0, t0 = len(received), time.perf_counter()
    time.sleep(seconds)  # the measuring window itself, not a synchronisation
    n1, t1 = len(received), time.perf_counter()
    epics.caput(p + "cam1:Acquire", 0, wait=True, timeout=10)
    _put_all(p, {"image1:EnableCallbacks": 0})
    pv.clear_callbacks()
    pv.disconnect()
    if set(received[n0:n1]) - {SIZE * SIZE}:
        raise RuntimeError(f"{p}: frames of other sizes {set(received[n0:n1])}")
    return (n1 - n0) / (t1 - t0)


def connect_all_time(names: list[str], start) -> float:
    """start() the IOC, then the seconds until every one of ``names`` is connected."""
    from caproto.threading.client import Context

    ctx = Context()
    t0 = time.perf_counter()
    start()
    pvs = ctx.get_pvs(*names, timeout=30)
    _wait(lambda: all(pv.connected for pv in pvs), 120, f"{len(names)} PVs connected")
    dt = time.perf_counter() - t0
    ctx.disconnect()
    return dt


def sim_names(prefix: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "adtoolkit", "ioc", "--prefix", prefix, "--list-pvs"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def real_names(ioc: RealIOC, prefix: str) -> list[str]:
    ioc.unpack()
    listing = ioc.unpack_dir / "real-adsim" / "pvlist-13SIM1.txt"
    names = []
    for line in listing.read_text().splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("13SIM1:"):
            names.append(prefix + name[len("13SIM1:") :])
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--period", type=float, default=0.0, help="AcquirePeriod of the monitor run"
    )
    parser.add_argument("--only", nargs="*", default=["hdf5", "monitor", "startup"])
    args = parser.parse_args()
    tarball = find_tarball(Path(__file__).resolve().parent)
    if tarball is None:
        sys.exit("real IOC tarball not found (../shared/real-adsim); set ADTOOLKIT_REAL_ADSIM")
    block = free_port_block(4)
    sim_port = free_port(exclude=range(block[0], block[0] + 4))
    os.environ.update(client_env([sim_port, block[0]]))  # before pyepics makes its context
    os.environ["EPICS_CA_MAX_ARRAY_BYTES"] = str(64 * 1024 * 1024)
    work = Path(tempfile.mkdtemp(prefix="bench-real-vs-sim-"))
    unpack = work / "runtime"
    results: dict[str, dict[str, list[float]]] = {"sim": {}, "real": {}}

    def make(kind: str):
        if kind == "sim":
            return SimulatedIOC(SIM_PREFIX, write_root=work / "sim", port=sim_port)
        return RealIOC(tarball, REAL_PREFIX, block[0], write_root=work / "real", unpack_dir=unpack)

    names = {"sim": sim_names(SIM_PREFIX), "real": real_names(make("real"), REAL_PREFIX)}
    for _ in range(args.rounds):
        for kind in ("sim", "real"):
            ioc = make(kind)
            p = ioc.prefix
            got = results[kind]
            try:
                if "startup" in args.only:
                    got.setdefault("startup", []).append(connect_all_time(names[kind], ioc.start))
                else:
                    ioc.start()
                if "hdf5" in args.only:
                    fps = hdf5_stream_fps(p, ioc.write_root, args.frames)
                    got.setdefault("hdf5", []).append(fps)
                if "monitor" in args.only:
                    got.setdefault("monitor", []).append(monitor_fps(p, args.seconds, args.period))
            except BaseException:
                print(f"{kind} IOC output (last lines):", *list(ioc.output)[-20:], sep="\n")
                raise
            finally:
                ioc.stop(timeout=60)  # a loaded machine can take a while to end a process
    print(f"records: sim {len(names['sim'])}, real {len(names['real'])}")
    print(f"{'measure':<34}{'sim':>10}{'real':>10}{'sim/real':>10}  goal")
    labels = {
        "hdf5": ("HDF5 stream 1024x1024 UInt8 (fr/s)", ">= 1.0"),
        "monitor": ("image1:ArrayData monitor (fr/s)", ">= 1.0"),
        "startup": ("start -> all records connected (s)", "<= 1.5"),
    }
    for key, (label, goal) in labels.items():
        if key not in args.only:
            continue
        sim = statistics.median(results["sim"][key])
        real = statistics.median(results["real"][key])
        print(f"{label:<34}{sim:>10.2f}{real:>10.2f}{sim / real:>10.2f}  {goal}")


if __name__ == "__main__":
    main()
