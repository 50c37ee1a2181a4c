"""Compression filters: NDFileHDF5's Compression parameters as HDF5 dataset filters.

zlib, szip, N-bit, Blosc, Bitshuffle/LZ4 and LZ4, through h5py and hdf5plugin.
What the installed build cannot do is said (a WriteMessage) rather than failing
mid-file: a Blosc compressor missing from the build keeps the Blosc filter at
level 0, an unavailable filter (JPEG) stores frames uncompressed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from adtoolkit.ioc.hdf5.params import enum_index, int_param

logger = logging.getLogger(__name__)

#: Compression mbbo strings, in record order
COMPRESSIONS = ("None", "N-bit", "szip", "zlib", "Blosc", "BSLZ4", "LZ4", "JPEG")
BLOSC_COMPRESSORS = ("BloscLZ", "LZ4", "LZ4HC", "SNAPPY", "ZLIB", "ZSTD")
BLOSC_SHUFFLES = ("None", "Byte", "Bit")


#: Blosc header compressor codes (flags byte bits 5-7) of the BloscCompressor choices
BLOSC_FORMAT_CODES = {"blosclz": 0, "lz4": 1, "lz4hc": 1, "snappy": 2, "zlib": 3, "zstd": 4}


@functools.cache
def blosc_supports(cname: str) -> bool:
    """Does the installed hdf5plugin's Blosc filter really compress with ``cname``?

    Snappy is only built into hdf5plugin when it was compiled with C++11
    (``hdf5plugin.get_config().build_config.cpp11``); without it the Blosc filter
    fails and HDF5 stores the chunk raw.  Rather than trust build flags, write one
    compressible chunk to an in-memory file and read the Blosc header back.

    The chunk is large on purpose: c-blosc gives Snappy up only when the output
    buffer may exceed the input (``snappy_max_compressed_length``), so a chunk
    of one Blosc block (up to ~128 kB of 8-bit data) is never Snappy-compressed
    -- the HDF5 filter then skips it and the chunk is stored raw, in real ADCore
    as here.  Bigger chunks (whole frames of real images) are compressed.
    """
    import hdf5plugin

    data = (np.arange(512 * 1024) % 251).astype("u1")
    try:
        with h5py.File(f"blosc-probe-{cname}", "w", driver="core", backing_store=False) as f:
            dset = f.create_dataset(
                "d", data=data, chunks=data.shape, **hdf5plugin.Blosc(cname=cname, clevel=5)
            )
            mask, raw = dset.id.read_direct_chunk((0,))
    except Exception:  # the filter refused the compressor outright
        logger.debug("Blosc %s probe failed", cname, exc_info=True)
        return False
    return mask == 0 and len(raw) > 2 and raw[2] >> 5 == BLOSC_FORMAT_CODES.get(cname, -1)


def compression_filters(params: Mapping[str, Any], dtype: np.dtype) -> tuple[dict[str, Any], str]:
    """h5py create_dataset keywords for the Compression parameters, and a message.

    The keywords may hold two of ours: ``_zlib`` (the level, for chunks we compress
    ourselves) and ``_nbit`` (bits, offset: see :func:`create_nbit_dataset`).  The
    message, empty when all went as asked, says what was stored instead.
    """
    index = enum_index(params.get("Compression", 0), COMPRESSIONS, "Compression")
    name = COMPRESSIONS[index]
    if name == "None":
        return {}, ""
    if name == "zlib":
        level = min(9, max(0, int_param(params, "ZLevel", 6)))
        return {"compression": "gzip", "compression_opts": level, "_zlib": level}, ""
    import hdf5plugin

    if name == "Blosc":
        choice = BLOSC_COMPRESSORS[
            enum_index(params.get("BloscCompressor", 0), BLOSC_COMPRESSORS, "BloscCompressor")
        ]
        cname = choice.lower()
        shuffle = enum_index(params.get("BloscShuffle", 0), BLOSC_SHUFFLES, "BloscShuffle")
        level = min(9, max(0, int_param(params, "BloscLevel", 5)))
        if not blosc_supports(cname):
            # keep the Blosc filter (readers see what was asked for) but with
            # level 0, Blosc's "store as is": never a filter failure mid-file
            message = (
                f"Blosc {choice} is not in this hdf5plugin build: "
                "chunks stored uncompressed (Blosc level 0)"
            )
            return dict(hdf5plugin.Blosc(cname="blosclz", clevel=0, shuffle=shuffle)), message
        return dict(hdf5plugin.Blosc(cname=cname, clevel=level, shuffle=shuffle)), ""
    if name == "BSLZ4":
        return dict(hdf5plugin.Bitshuffle(cname="lz4")), ""
    if name == "LZ4":
        return dict(hdf5plugin.LZ4()), ""
    if name == "szip":
        pixels = int_param(params, "SZipNumPixels", 16)
        pixels = min(32, max(2, pixels - pixels % 2))  # even, 2..32
        return {"compression": "szip", "compression_opts": ("nn", pixels)}, ""
    if name == "N-bit":
        if dtype.kind not in "iu":
            return {}, f"N-bit compression of {dtype} data is not simulated: uncompressed"
        width = dtype.itemsize * 8
        offset = min(max(int_param(params, "DataBitsOffset", 0), 0), width - 1)
        bits = int_param(params, "NumDataBits", 0)
        bits = width - offset if bits <= 0 else min(bits, width - offset)
        return {"_nbit": (bits, offset)}, ""
    # JPEG: hdf5plugin has no JPEG filter
    return {}, f"{name} compression is not available here: frames stored uncompressed"


def create_nbit_dataset(
    group: h5py.Group,
    name: str,
    shape: tuple[int, ...],
    maxshape: tuple[int | None, ...],
    dtype: np.dtype,
    chunks: tuple[int, ...],
    fillvalue: Any,
    bits: int,
    offset: int,
) -> h5py.Dataset:
    """An integer dataset stored with ``bits`` significant bits from ``offset`` (N-bit filter).

    The file datatype carries the precision (NumDataBits) and offset
    (DataBitsOffset), as NDFileHDF5 sets them; HDF5's N-bit filter then packs
    only those bits.
    """
    tid = h5py.h5t.py_create(dtype).copy()
    tid.set_offset(0)
    tid.set_precision(bits)
    tid.set_offset(offset)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    dcpl.set_fill_value(np.array(fillvalue, dtype=dtype))
    dcpl.set_filter(h5py.h5z.FILTER_NBIT, h5py.h5z.FLAG_OPTIONAL, ())
    space = h5py.h5s.create_simple(
        shape, tuple(h5py.h5s.UNLIMITED if m is None else m for m in maxshape)
    )
    dsid = h5py.h5d.create(group.id, name.encode("utf-8"), tid, space, dcpl=dcpl)
    return h5py.Dataset(dsid)
