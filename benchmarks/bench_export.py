"""Export of a 1000-frame run with copy=True, against copying the raw frames.

Acceptance (issue 7): exporting with ``copy=True`` takes under 2x the time of
copying the raw frames (the IOC's files, as ``cp`` does).  Measured side by
side in one process, interleaved, ``--repeat`` rounds:

* ``file copy``: ``shutil.copyfile`` of the IOC-written HDF5 file(s);
* ``h5py copy``: read every frame with h5py and write it into a new file with
  the same chunking and filters (what any "copy the frames" code must do);
* ``export``:   ``adtoolkit.export.export(documents, copy=True)``, documents in,
  complete NeXus file (frames, metadata, measurement group) out.

The machine is noisy (2 cores shared with other jobs): compare figures taken
in one run, never figures from different runs.  Printed: best of N for each,
the ratio of the bests, and the median of the per-round ratios (each round's
export against the file copy just before it).

Run:  PYTHONPATH=src python benchmarks/bench_export.py [--frames 1000] [--size 512]
      [--compression gzip] [--repeat 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from adsupport import World  # noqa: E402

from adtoolkit.export import export  # noqa: E402


def h5py_copy(sources: list[Path], dest: Path) -> None:
    with h5py.File(dest, "w") as out:
        for i, src_path in enumerate(sources):
            with h5py.File(src_path, "r") as f:
                src = f["entry/data/data"]
                dst = out.create_dataset(
                    f"data{i}",
                    shape=src.shape,
                    dtype=src.dtype,
                    chunks=src.chunks,
                    compression=src.compression,
                    compression_opts=src.compression_opts,
                )
                step = max(1, (64 << 20) // (src.dtype.itemsize * src.shape[1] * src.shape[2]))
                for j in range(0, src.shape[0], step):
                    dst[j : j + step] = src[j : j + step]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256, help="frames are SIZE x SIZE")
    parser.add_argument("--dtype", default="uint16")
    parser.add_argument("--compression", default=None, help="e.g. gzip (default: none)")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        tmp = Path(tmp)
        world = World(
            tmp,
            shape=(args.size, args.size),
            dtype=args.dtype,
            compression=args.compression,
        )
        t0 = time.perf_counter()
        world.count(num=args.frames)
        acquire = time.perf_counter() - t0
        sources = list(world.det.files)
        nbytes = sum(p.stat().st_size for p in sources)
        print(
            f"run: {args.frames} frames {args.size}x{args.size} {args.dtype}, "
            f"compression={args.compression}, {nbytes / 1e6:.1f} MB in {len(sources)} file(s); "
            f"acquired in {acquire:.1f} s"
        )
        times: dict[str, list[float]] = {"file copy": [], "h5py copy": [], "export": []}
        out = tmp / "out"
        out.mkdir()
        for r in range(args.repeat + 1):  # round 0 warms the page cache, not counted
            t = time.perf_counter()
            for i, s in enumerate(sources):
                shutil.copyfile(s, out / f"raw{i}.h5")
            t_file = time.perf_counter() - t
            t = time.perf_counter()
            h5py_copy(sources, out / "h5copy.h5")
            t_h5 = time.perf_counter() - t
            t = time.perf_counter()
            export(world.documents, out, "exported", copy=True, overwrite=True)
            t_exp = time.perf_counter() - t
            if r:
                times["file copy"].append(t_file)
                times["h5py copy"].append(t_h5)
                times["export"].append(t_exp)
            for p in out.iterdir():
                p.unlink()
        best = {k: min(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"{k:10s} best {best[k]:7.3f} s  median {statistics.median(v):7.3f} s")
        for base in ("file copy", "h5py copy"):
            rounds = [e / b for e, b in zip(times["export"], times[base], strict=True)]
            print(
                f"ratio export / {base}: of the bests {best['export'] / best[base]:.2f}, "
                f"per round median {statistics.median(rounds):.2f} "
                f"(range {min(rounds):.2f}-{max(rounds):.2f})"
                + ("   acceptance: < 2" if base == "file copy" else "")
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
