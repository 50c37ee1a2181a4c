"""Soak: a long stream into one file, then many one-frame counts; nothing may grow.

    PYTHONPATH=src python benchmarks/soak.py              # 10,000 frames, 500 counts
    PYTHONPATH=src python benchmarks/soak.py --short      # the CI version (< 60 s)
    PYTHONPATH=src python benchmarks/soak.py --json out.json

Phase 1 streams ``--frames`` frames (HDF1 Stream mode, one file) from a simulated IOC
started for this run, then checks the file holds every frame.  Phase 2 runs ``--counts``
consecutive ``bp.count([det], num=1)`` with a real databroker catalog subscribed.

Before, during and after, it samples the IOC process and this (client) process from
/proc: resident memory, open file descriptors, threads, TCP circuits; plus the client's
CA channels (pyepics' channel cache).  After a warm-up (the first ``--warmup`` fraction of
the counts: caches, lazy connections and the allocator settle there) every figure must
stay within the bounds in :data:`BOUNDS`.  It prints a table, optionally writes JSON, and
exits 1 when a bound is broken (2 when something it needs is missing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

#: Allowed growth from the end of the warm-up to the end of the run.
BOUNDS = {
    "ioc_rss_mib": 25.0,
    "ioc_fds": 4,
    "ioc_threads": 2,
    "ioc_tcp": 0,
    "client_rss_mib": 40.0,
    "client_fds": 8,
    "client_threads": 2,
    "client_ca_channels": 0,
    "client_tcp": 0,
}

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Sample:
    label: str
    t: float
    ioc_rss_mib: float
    ioc_fds: int
    ioc_threads: int
    ioc_tcp: int
    client_rss_mib: float
    client_fds: int
    client_threads: int
    client_ca_channels: int
    client_tcp: int


def _proc_stats(pid: int | str) -> tuple[float, int, int, int]:
    """(RSS MiB, open fds, threads, established TCP connections) of a process, from /proc."""
    base = Path(f"/proc/{pid}")
    rss = int((base / "statm").read_text().split()[1]) * PAGE / 2**20
    threads = len(list((base / "task").iterdir()))
    inodes = set()
    fds = 0
    for fd in (base / "fd").iterdir():
        fds += 1
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    tcp = 0
    for proto in ("tcp", "tcp6"):
        try:
            lines = (base / "net" / proto).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "01" and cols[9] in inodes:  # 01: ESTABLISHED
                tcp += 1
    return rss, fds, threads, tcp


def _ca_channels() -> int:
    from epics import ca

    return sum(len(chans) for chans in ca._cache.values())


def find_ioc_pid(prefix: str) -> int:
    """The pid of the ``adtoolkit ioc --prefix PREFIX`` process (found by command line)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ioc" in argv and b"--prefix" in argv:
            i = argv.index(b"--prefix")
            if argv[i + 1 : i + 2] == [prefix.encode()] and b"adtoolkit" in b" ".join(argv):
                return int(proc.name)
    raise RuntimeError(f"no 'adtoolkit ioc --prefix {prefix}' process found")


class Probe:
    def __init__(self, ioc_pid: int) -> None:
        self.ioc_pid = ioc_pid
        self.samples: list[Sample] = []
        self.t0 = time.monotonic()

    def sample(self, label: str) -> Sample:
        ioc = _proc_stats(self.ioc_pid)
        client = _proc_stats("self")
        s = Sample(
            label,
            round(time.monotonic() - self.t0, 2),
            round(ioc[0], 1),
            ioc[1],
            ioc[2],
            ioc[3],
            round(client[0], 1),
            client[1],
            client[2],
            _ca_channels(),
            client[3],
        )
        self.samples.append(s)
        return s


def _wait(predicate, timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(poll)


def stream_frames(prefix: str, root: Path, frames: int, size: tuple[int, int], probe: Probe):
    """Stream ``frames`` frames into one HDF5 file over plain CA; return (file, frames/s)."""
    import epics

    cam, hdf = f"{prefix}cam1:", f"{prefix}HDF1:"

    def put(pv, value, wait=True):
        if epics.caput(pv, value, wait=wait, timeout=10, connection_timeout=10) != 1:
            raise RuntimeError(f"caput {pv} = {value!r} failed")

    def get(pv, as_string=False):
        value = epics.caget(pv, as_string=as_string, timeout=10, connection_timeout=10)
        if value is None:
            raise RuntimeError(f"caget {pv} failed")
        return value

    directory = root / "soak"
    directory.mkdir(exist_ok=True)
    put(cam + "Acquire", 0)
    put(hdf + "Capture", 0)
    for pv, value in [
        ("ImageMode", 1),
        ("NumImages", frames),
        ("AcquireTime", 0.0),
        ("AcquirePeriod", 0.0),
        ("SizeX", size[0]),
        ("SizeY", size[1]),
        ("DataType", 1),  # UInt8
        ("ColorMode", 0),
        ("ArrayCallbacks", 1),
    ]:
        put(cam + pv, value)
    for pv, value in [
        ("EnableCallbacks", 1),
        ("BlockingCallbacks", 1),  # every frame reaches the file: none dropped
        ("NDArrayPort", get(cam + "PortName_RBV", as_string=True)),
        ("FileWriteMode", 2),  # Stream
        ("NumCapture", frames),
        ("LazyOpen", 1),
        ("AutoIncrement", 1),
        ("AutoSave", 1),
        ("CreateDirectory", 0),
        ("FilePath", f"{directory}/"),
        ("FileName", "stream"),
        ("FileNumber", 0),
        ("FileTemplate", "%s%s_%6.6d.h5"),
    ]:
        put(hdf + pv, value)
    put(hdf + "Capture", 1, wait=False)
    _wait(lambda: get(hdf + "Capture_RBV") == 1, 10, f"{hdf}Capture_RBV = 1")
    t0 = time.monotonic()
    put(cam + "Acquire", 1, wait=False)
    deadline = t0 + max(60.0, frames / 20)
    next_sample = t0
    while get(hdf + "Capture_RBV") != 0:
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(
                f"stream of {frames} frames not done after {now - t0:.0f} s: "
                f"NumCaptured_RBV={get(hdf + 'NumCaptured_RBV')}"
            )
        if now >= next_sample:
            probe.sample("stream")
            next_sample = now + 1.0
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    captured = get(hdf + "NumCaptured_RBV")
    status = get(hdf + "WriteStatus")
    message = get(hdf + "WriteMessage", as_string=True)
    name = get(hdf + "FullFileName_RBV", as_string=True)
    if status != 0 or captured != frames:
        raise RuntimeError(f"stream ended with {captured}/{frames} frames: {message!r}")
    put(hdf + "EnableCallbacks", 0)
    return Path(name), frames / elapsed


def check_file(path: Path, frames: int, size: tuple[int, int]) -> tuple[int, ...]:
    import h5py

    with h5py.File(path, "r") as f:
        shape = f["/entry/data/data"].shape
        first, last = f["/entry/data/data"][0], f["/entry/data/data"][-1]
        ids_path = "/entry/instrument/NDAttributes/NDArrayUniqueId"
        ids = f[ids_path][()] if ids_path in f else None  # the default layout has it
    expected = (frames, size[1], size[0])
    if shape != expected:
        raise RuntimeError(f"{path}: /entry/data/data has shape {shape}, expected {expected}")
    if ids is not None and (
        len(ids) != frames or any(b - a != 1 for a, b in zip(ids[:-1], ids[1:], strict=True))
    ):
        raise RuntimeError(f"{path}: NDArrayUniqueId is not {frames} consecutive ids")
    if first.shape != (size[1], size[0]) or last.shape != first.shape:
        raise RuntimeError(f"{path}: frame shape {first.shape}")
    return shape


def run_counts(prefix: str, root: Path, counts: int, size, probe: Probe, every: int) -> float:
    """``counts`` one-frame counts through bluesky + databroker; return counts/s."""
    import bluesky.plans as bp
    import databroker
    from bluesky import RunEngine

    from adtoolkit.devices import make_detector

    # The cam keeps the frame size the stream phase set over CA.
    path = f"{root}/counts/"
    det = make_detector(prefix, name="soak", plugins=("hdf1",), write_path=path, read_path=path)
    RE = RunEngine({})
    catalog = databroker.temp().v2
    RE.subscribe(catalog.v1.insert)
    uids = []
    t0 = time.monotonic()
    for i in range(counts):
        uids.extend(RE(bp.count([det], num=1)))
        if (i + 1) % every == 0 or i == 0:
            probe.sample(f"count {i + 1}")
    rate = counts / (time.monotonic() - t0)
    probe.sample("end")
    # The last run reads back through databroker and area-detector-handlers (after the
    # last sample: its dask/threads are not what this soak watches).
    frame = catalog[uids[-1]].primary.read()["soak_image"].values
    if frame.shape[-2:] != (size[1], size[0]):
        raise RuntimeError(f"last count read back with shape {frame.shape}")
    return rate


def growth(samples: list[Sample], warm: Sample) -> dict[str, float]:
    after = samples[samples.index(warm) :]
    return {k: round(max(getattr(s, k) for s in after) - getattr(warm, k), 1) for k in BOUNDS}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--counts", type=int, default=500)
    parser.add_argument("--size", default="64x48", help="frame size XxY (default 64x48)")
    parser.add_argument("--warmup", type=float, default=0.1, help="fraction of the counts")
    parser.add_argument("--short", action="store_true", help="CI version: 600 frames, 30 counts")
    parser.add_argument("--json", type=Path, help="write samples, growth and bounds here")
    args = parser.parse_args(argv)
    if args.short:
        args.frames, args.counts, args.warmup = 600, 30, 0.25
    size = tuple(int(v) for v in args.size.lower().split("x"))

    try:
        from adtoolkit.ioc.launcher import SimulatedIOC
    except ImportError as exc:
        print(f"soak: cannot start the simulated IOC: {exc}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="adt-soak-") as tmp:
        root = Path(tmp)
        with SimulatedIOC(prefix="soak:", write_root=root) as ioc:
            os.environ.update(ioc.env)  # before pyepics creates its CA context
            # ophyd must install its pyepics PV class before any plain PV is cached
            import adtoolkit.devices  # noqa: F401

            probe = Probe(find_ioc_pid(ioc.prefix))
            probe.sample("start")
            path, fps = stream_frames(ioc.prefix, root, args.frames, size, probe)
            shape = check_file(path, args.frames, size)
            probe.sample("after stream")
            every = max(1, args.counts // 20)
            rate = run_counts(ioc.prefix, root, args.counts, size, probe, every)

    warm_index = max(1, int(args.counts * args.warmup))
    warm = next(
        (
            s
            for s in probe.samples
            if s.label.startswith("count ") and int(s.label[6:]) >= warm_index
        ),
        probe.samples[-1],
    )
    grew = growth(probe.samples, warm)
    broken = {k: v for k, v in grew.items() if v > BOUNDS[k]}

    cols = list(BOUNDS)
    print(
        f"stream: {args.frames} frames of {size[0]}x{size[1]} UInt8 into {path.name}, "
        f"shape {shape}, {fps:.0f} frames/s"
    )
    print(f"counts: {args.counts} one-frame counts, {rate:.2f} counts/s")
    print(f"{'sample':>14} " + " ".join(f"{c:>18}" for c in cols))
    for s in probe.samples:
        print(f"{s.label:>14} " + " ".join(f"{getattr(s, c):>18}" for c in cols))
    print(
        f"{'growth':>14} " + " ".join(f"{grew[c]:>18}" for c in cols) + f"   (from '{warm.label}')"
    )
    print(f"{'bound':>14} " + " ".join(f"{BOUNDS[c]:>18}" for c in cols))
    print("RESULT:", "within bounds" if not broken else f"bounds broken: {broken}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "frames": args.frames,
                    "counts": args.counts,
                    "stream_fps": fps,
                    "counts_per_s": rate,
                    "warm_sample": warm.label,
                    "samples": [asdict(s) for s in probe.samples],
                    "growth": grew,
                    "bounds": BOUNDS,
                    "broken": broken,
                },
                indent=1,
            )
        )
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
