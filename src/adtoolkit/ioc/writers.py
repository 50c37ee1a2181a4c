"""File writers for the simulated TIFF and JPEG file plugins.

Each follows the NDFilePlugin writer interface (``open`` / ``write`` / ``flush``
/ ``close``).  The NDFileHDF5 engine (layouts, attributes, chunking) lives in
``adtoolkit.ioc.hdf5``.
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
