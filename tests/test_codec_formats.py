"""The codec payloads NDPluginCodec builds are the formats HDF5's filters read:
each payload, behind the filter's 12-byte header, is written as a raw chunk
(direct chunk write) and read back through hdf5plugin's LZ4 and Bitshuffle
filters, bit for bit.  Pure functions, no IOC."""

from __future__ import annotations

import struct

import h5py
import hdf5plugin
import numpy as np
import pytest

from adtoolkit.ioc.plugins.codec import (
    bslz4_block_elements,
    bslz4_compress,
    bslz4_decompress,
    lz4hdf5_compress,
)

ARRAYS = {
    "ramp uint16": (np.add.outer(np.arange(48), np.arange(64))).astype(np.uint16),
    "noise uint16, odd size": np.random.default_rng(1).integers(0, 4000, (37, 53), np.uint16),
    "uint32, several blocks": np.arange(5003, dtype=np.uint32).reshape(1, -1),
    "uint8, tail of 5": (np.arange(5005) % 256).astype(np.uint8).reshape(1, -1),
}


def read_back(tmp_path, data: np.ndarray, chunk: bytes, filter_args: dict) -> np.ndarray:
    path = tmp_path / "chunk.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(
            "d", shape=data.shape, dtype=data.dtype, chunks=data.shape, **filter_args
        )
        ds.id.write_direct_chunk((0,) * data.ndim, chunk)
    with h5py.File(path, "r") as f:
        return f["d"][()]


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_bslz4_is_the_bitshuffle_filter_format(tmp_path, name):
    data = ARRAYS[name]
    payload = bslz4_compress(data)
    block_bytes = bslz4_block_elements(data.dtype.itemsize) * data.dtype.itemsize
    header = struct.pack(">QI", data.nbytes, block_bytes)
    back = read_back(tmp_path, data, header + payload, hdf5plugin.Bitshuffle(cname="lz4"))
    np.testing.assert_array_equal(back, data)
    decoded = bslz4_decompress(payload, data.dtype, data.size).reshape(data.shape)
    np.testing.assert_array_equal(decoded, data)


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_lz4hdf5_is_the_lz4_filter_format(tmp_path, name):
    data = ARRAYS[name]
    payload = lz4hdf5_compress(data.tobytes(), 0)
    np.testing.assert_array_equal(read_back(tmp_path, data, payload, hdf5plugin.LZ4()), data)
