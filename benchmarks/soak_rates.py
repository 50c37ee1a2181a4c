"""What limits frame rate and per-point rate, measured side by side in one run.

    PYTHONPATH=src python benchmarks/soak_rates.py [--frames 300] [--counts 20]

Starts three simulated IOCs side by side (own prefix, own port, one client address
list) and measures, on this machine, in this run:

1. frame rate by frame size (UInt8, AcquirePeriod 0): the cam alone (frames generated
   and passed to plugins, no file plugin enabled), then streaming every frame into one
   HDF5 file (HDF1 Stream, BlockingCallbacks=Yes so no frame is dropped); the ratio shows
   whether generation or writing is the limit;
2. points per second of ``bp.count`` with 1, 2 and 3 detectors (one per IOC) in one
   RunEngine, one 1-frame trigger per detector per point, databroker subscribed.

Figures are printed as a table; ratios are what to compare across machines.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SIZES = [(64, 48), (512, 512), (1024, 1024)]


def _caput(pv, value, wait=True):
    import epics

    if epics.caput(pv, value, wait=wait, timeout=10, connection_timeout=10) != 1:
        raise RuntimeError(f"caput {pv} = {value!r} failed")


def _caget(pv, as_string=False):
    import epics

    value = epics.caget(pv, as_string=as_string, timeout=10, connection_timeout=10)
    if value is None:
        raise RuntimeError(f"caget {pv} failed")
    return value


def _wait(pv, predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate(_caget(pv)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pv}: not done within {timeout} s")
        time.sleep(0.01)


def frame_rate(prefix: str, root: Path, size, frames: int, write: bool) -> float:
    cam, hdf = prefix + "cam1:", prefix + "HDF1:"
    _caput(cam + "Acquire", 0)
    _caput(hdf + "Capture", 0)
    for pv, v in [
        ("SizeX", size[0]),
        ("SizeY", size[1]),
        ("DataType", 1),
        ("ColorMode", 0),
        ("AcquireTime", 0.0),
        ("AcquirePeriod", 0.0),
        ("ImageMode", 1),
        ("NumImages", frames),
        ("ArrayCallbacks", 1),
    ]:
        _caput(cam + pv, v)
    _caput(hdf + "EnableCallbacks", 1 if write else 0)
    if write:
        (root / "rates").mkdir(exist_ok=True)
        for pv, v in [
            ("BlockingCallbacks", 1),
            ("NDArrayPort", _caget(cam + "PortName_RBV", as_string=True)),
            ("FileWriteMode", 2),
            ("NumCapture", frames),
            ("LazyOpen", 1),
            ("AutoIncrement", 1),
            ("FilePath", f"{root}/rates/"),
            ("FileName", f"r{size[0]}"),
            ("FileTemplate", "%s%s_%3.3d.h5"),
        ]:
            _caput(hdf + pv, v)
        _caput(hdf + "Capture", 1, wait=False)
        _wait(hdf + "Capture_RBV", lambda v: v == 1, 10)
    before = _caget(cam + "ArrayCounter_RBV")
    t0 = time.monotonic()
    _caput(cam + "Acquire", 1, wait=False)
    _wait(cam + "ArrayCounter_RBV", lambda v: v >= before + frames, 600)
    if write:
        _wait(hdf + "Capture_RBV", lambda v: v == 0, 600)
        if _caget(hdf + "NumCaptured_RBV") != frames:
            raise RuntimeError(f"{hdf}: {_caget(hdf + 'WriteMessage', as_string=True)}")
    elapsed = time.monotonic() - t0
    _wait(cam + "Acquire_RBV", lambda v: v == 0, 60)
    _caput(hdf + "EnableCallbacks", 0)
    return frames / elapsed


def points_per_second(iocs, root: Path, counts: int, n_det: int) -> float:
    import bluesky.plans as bp
    import databroker
    from bluesky import RunEngine

    from adtoolkit.devices import make_detector

    dets = []
    for i, ioc in enumerate(iocs[:n_det]):
        for pv, v in [("SizeX", 64), ("SizeY", 48), ("AcquireTime", 0.001), ("AcquirePeriod", 0)]:
            _caput(f"{ioc.prefix}cam1:{pv}", v)
        path = f"{root}/multi{i}/"
        Path(path).mkdir(exist_ok=True)
        dets.append(
            make_detector(
                ioc.prefix, name=f"det{i}", plugins=("hdf1",), write_path=path, read_path=path
            )
        )
    RE = RunEngine({})
    catalog = databroker.temp().v2
    RE.subscribe(catalog.v1.insert)
    RE(bp.count(dets, num=2))  # warm-up: lazy connections, priming
    t0 = time.monotonic()
    (uid,) = RE(bp.count(dets, num=counts))
    rate = counts / (time.monotonic() - t0)
    data = catalog[uid].primary.read()
    for det in dets:
        if data[f"{det.name}_image"].shape != (counts, 1, 48, 64):
            raise RuntimeError(f"{det.name}: read back {data[f'{det.name}_image'].shape}")
    return rate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--counts", type=int, default=20)
    args = parser.parse_args(argv)

    from adtoolkit.ioc.launcher import SimulatedIOC, client_env, reserve_ports

    ports = reserve_ports(3)
    os.environ.update(client_env(ports))  # one address list reaching all three IOCs
    import adtoolkit.devices  # noqa: F401  (ophyd sets up pyepics before any PV exists)

    with tempfile.TemporaryDirectory(prefix="adt-rates-") as tmp:
        root = Path(tmp)
        iocs = [
            SimulatedIOC(prefix=f"r{i}:", write_root=root, port=port).start()
            for i, port in enumerate(ports)
        ]
        try:
            print(
                f"3 IOCs side by side on ports {ports}, started in "
                + ", ".join(f"{ioc.startup_time:.1f} s" for ioc in iocs)
            )
            print(f"\n{'frame':>11} {'cam only':>12} {'cam+HDF5':>12} {'ratio':>7} {'MB/s':>8}")
            for size in SIZES:
                n = args.frames if size[0] < 1024 else max(50, args.frames // 3)
                cam = frame_rate(iocs[0].prefix, root, size, n, write=False)
                hdf = frame_rate(iocs[0].prefix, root, size, n, write=True)
                mbs = hdf * size[0] * size[1] / 1e6
                print(
                    f"{size[0]:>5}x{size[1]:<5} {cam:>10.0f}/s {hdf:>10.0f}/s "
                    f"{hdf / cam:>7.2f} {mbs:>8.1f}"
                )
            print(f"\n{'detectors':>9} {'points/s':>9} {'frames/s total':>15}")
            base = None
            for n_det in (1, 2, 3):
                rate = points_per_second(iocs, root, args.counts, n_det)
                base = base or rate
                print(f"{n_det:>9} {rate:>9.2f} {rate * n_det:>15.2f}   ({rate / base:.2f}x)")
        finally:
            for ioc in iocs:
                ioc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
