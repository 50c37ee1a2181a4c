"""File writers for the simulated file plugins (TIFF, JPEG, and a minimal HDF5).

Each follows the NDFilePlugin writer interface (``open`` / ``write`` / ``flush``
/ ``close``).  The full NDFileHDF5 engine (layouts, attributes, chunking) lives
in ``adtoolkit.ioc.hdf5``; :class:`MinimalHDF5Writer` is used only when that
package is not available, and writes what ophyd's AD_HDF5 handler reads:
``/entry/data/data`` (hard link to ``/entry/instrument/detector/data``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NDArray


class TIFFWriter:
    """NDFileTIFF: one array per file, written with tifffile."""

    multiple_arrays = False

    def open(self, path: str, array: NDArray, params: Any, num_capture: int, mode: str) -> None:
        self.path = path

    def write(self, array: NDArray) -> None:
        import tifffile

        data = array.data
        photometric = "rgb" if data.ndim == 3 and data.shape[-1] == 3 else "minisblack"
        tifffile.imwrite(
            self.path,
            data,
            photometric=photometric,
            metadata=None,
            extratags=[(65000, "s", 0, f"uniqueId={array.unique_id}", True)],
        )

    def flush(self) -> None:
        pass

    def close(self) -> dict:
        return {}


class JPEGWriter:
    """NDFileJPEG: one 8-bit array per file, written with Pillow at JPEGQuality."""

    multiple_arrays = False

    def open(self, path: str, array: NDArray, params: Any, num_capture: int, mode: str) -> None:
        self.path = path
        self.quality = int(params.get("JPEGQuality", 50))

    def write(self, array: NDArray) -> None:
        from PIL import Image

        data = array.data
        if data.dtype != np.uint8:
            data = data.astype(np.uint8)  # NDFileJPEG converts to UInt8 (C cast)
        mode = "RGB" if data.ndim == 3 else "L"
        Image.fromarray(data, mode).save(self.path, "JPEG", quality=max(1, min(self.quality, 100)))

    def flush(self) -> None:
        pass

    def close(self) -> dict:
        return {}


class MinimalHDF5Writer:
    """A single detector dataset, appended frame by frame (Capture/Stream) or
    one (Y, X) frame (Single)."""

    multiple_arrays = True

    def open(self, path: str, array: NDArray, params: Any, num_capture: int, mode: str) -> None:
        import h5py

        self.file = h5py.File(path, "w")
        frame = array.data.shape
        self.single = mode == "Single"
        entry = self.file.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        det = entry.create_group("instrument/detector")
        if self.single:
            self.ds = det.create_dataset("data", shape=frame, dtype=array.data.dtype)
        else:
            maxframes = num_capture if num_capture > 0 else None
            self.ds = det.create_dataset(
                "data",
                shape=(0, *frame),
                maxshape=(maxframes, *frame),
                chunks=(1, *frame),
                dtype=array.data.dtype,
            )
        self.ds.attrs["signal"] = 1
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data["data"] = self.ds  # hard link, as the default layout does
        self.n = 0

    def write(self, array: NDArray) -> None:
        if self.single:
            self.ds[...] = array.data
        else:
            self.ds.resize(self.n + 1, axis=0)
            self.ds[self.n] = array.data
        self.n += 1

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> dict:
        self.file.close()
        return {}
