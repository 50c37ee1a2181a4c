"""Stream-mode throughput of HDF5Writer against plain h5py, side by side in one run.

    PYTHONPATH=src python benchmarks/bench_hdf5_writer.py [--frames 100] [--rounds 3]

Both sides append the same 1024x1024 UInt8 frames, one frame per chunk:

* ``h5py``: ``resize`` + slice assignment on a chunked dataset, nothing else;
* ``HDF5Writer``: the simulated NDFileHDF5 engine in Stream mode with the default
  layout, i.e. also the NDAttribute datasets, the performance dataset and the
  hard link a real IOC writes.

Once uncompressed, once with zlib (HDF5Writer Compression=zlib, ZLevel=6) against
h5py ``compression="gzip", compression_opts=6``.  Rounds alternate between the two
sides and the median of each is reported, to damp the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from adtoolkit.ioc.hdf5.writer import HDF5Writer
from adtoolkit.ioc.ndarray import NDArray, NDAttribute

SHAPE = (1024, 1024)


def make_frames(count: int) -> list[NDArray]:
    """Sim-detector-like frames: a smooth pattern plus noise (compressible, not trivially)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    base = (64 + 48 * np.sin(x / 37.0) * np.cos(y / 53.0)).astype(np.int16)
    frames = []
    for i in range(count):
        noise = rng.integers(-8, 8, size=SHAPE, dtype=np.int16)
        data = np.clip(base + noise + (i % 32), 0, 255).astype(np.uint8)
        cm = NDAttribute("ColorMode", np.int32(0), "INT32", "Color mode", "Driver")
        frames.append(NDArray.stamped(data, i + 1, attributes={"ColorMode": cm}))
    return frames


def run_h5py(path: Path, frames: list[NDArray], compressed: bool) -> float:
    extra = {"compression": "gzip", "compression_opts": 6} if compressed else {}
    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        dset = f.create_dataset(
            "data",
            shape=(0, *SHAPE),
            maxshape=(None, *SHAPE),
            chunks=(1, *SHAPE),
            dtype="u1",
            **extra,
        )
        for i, fr in enumerate(frames):
            dset.resize(i + 1, axis=0)
            dset[i] = fr.data
    return len(frames) / (time.perf_counter() - t0)


def run_writer(path: Path, frames: list[NDArray], compressed: bool) -> float:
    params = {"Compression": "zlib" if compressed else "None", "ZLevel": 6}
    writer = HDF5Writer()
    t0 = time.perf_counter()
    writer.open(str(path), frames[0], params, 0, "Stream")
    for fr in frames:
        writer.write(fr)
    writer.close()
    return len(frames) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args(argv)
    frames = make_frames(args.frames)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmpdir = Path(tmp)
        print(
            f"{args.frames} frames of {SHAPE[1]}x{SHAPE[0]} UInt8, {args.rounds} rounds, in {tmpdir}"
        )
        print(f"{'case':<14}{'h5py fps':>12}{'HDF5Writer fps':>16}{'ratio':>8}")
        for compressed in (False, True):
            ref, ours = [], []
            for r in range(args.rounds):
                ref.append(run_h5py(tmpdir / f"ref{r}.h5", frames, compressed))
                (tmpdir / f"ref{r}.h5").unlink()
                ours.append(run_writer(tmpdir / f"ours{r}.h5", frames, compressed))
                (tmpdir / f"ours{r}.h5").unlink()
            ref_fps, our_fps = statistics.median(ref), statistics.median(ours)
            label = "zlib/gzip 6" if compressed else "uncompressed"
            print(f"{label:<14}{ref_fps:>12.1f}{our_fps:>16.1f}{our_fps / ref_fps:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
