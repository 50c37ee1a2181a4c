"""NDPluginCodec (``Codec1:``, ``Codec2:``): compress and decompress arrays.

Mode Compress turns an array into a codec-compressed one: the payload goes in
:attr:`NDArray.compressed`, the codec name ("zlib", "blosc", "lz4", "lz4hdf5",
"bslz4", "jpeg", the NDCodec_t names of ADCore) in :attr:`NDArray.codec`, and ``data``
keeps the shape and type of the decompressed array.  Mode Decompress reverses
it bit for bit (JPEG is lossy).  CompFactor_RBV is uncompressed / compressed
bytes; the input's Codec_RBV and CompressedSize_RBV describe what arrived.
Plugins that are not compression aware ignore compressed arrays.

The formats are those ADCore writes: Zlib is a zlib stream (compress2); Blosc a
c-blosc 1 buffer (through numcodecs); LZ4 a raw LZ4 block; LZ4HDF5 the HDF5 LZ4
filter's framing (big-endian total size and block size, then per block its
compressed size and bytes, a block that does not shrink stored as is); BSLZ4
bitshuffle's LZ4 block stream (bshuf_compress_lz4, default block size), the
HDF5 bitshuffle filter's chunk without its header.

As on the real IOC a codec that cannot handle the array sets CodecStatus Error
with a message in CodecError (JPEG: "JPEG only supports 8-bit data") and passes
the array on unchanged.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver

COMPRESS, DECOMPRESS = 0, 1
COMPRESSORS = ("None", "JPEG", "Zlib", "Blosc", "LZ4", "LZ4HDF5", "BSLZ4")
BLOSC_NAMES = ("blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd")
SUCCESS, WARNING, ERROR = 0, 1, 2
LZ4HDF5_DEFAULT_BLOCK = 1 << 30


class CodecError(Exception):
    """A codec that cannot handle this array (the message goes to CodecError)."""


def lz4hdf5_compress(raw: bytes, block_size: int) -> bytes:
    import lz4.block

    block = block_size if block_size > 0 else LZ4HDF5_DEFAULT_BLOCK
    parts = [struct.pack(">QI", len(raw), block)]
    for start in range(0, len(raw), block):
        chunk = raw[start : start + block]
        packed = lz4.block.compress(chunk, store_size=False)
        if len(packed) >= len(chunk):
            packed = chunk
        parts.append(struct.pack(">I", len(packed)) + packed)
    return b"".join(parts)


def lz4hdf5_decompress(payload: bytes) -> bytes:
    import lz4.block

    total, block = struct.unpack_from(">QI", payload)
    pos, out = 12, []
    remaining = total
    while remaining > 0:
        (size,) = struct.unpack_from(">I", payload, pos)
        pos += 4
        want = min(block, remaining)
        chunk = payload[pos : pos + size]
        pos += size
        out.append(chunk if size == want else lz4.block.decompress(chunk, uncompressed_size=want))
        remaining -= want
    return b"".join(out)


def bitshuffle(block: np.ndarray) -> bytes:
    """Bitshuffle's bit transpose of ``n`` elements (n a multiple of 8): for each
    byte of the element, for each bit (least significant first), that bit of
    every element, eight elements to a byte, the first in the lowest bit."""
    n, size = block.shape[0], block.dtype.itemsize
    bits = np.unpackbits(block.view(np.uint8).reshape(n, size), axis=1, bitorder="little")
    return np.packbits(
        bits.reshape(n, size, 8).transpose(1, 2, 0), axis=-1, bitorder="little"
    ).tobytes()


def unbitshuffle(payload: bytes, n: int, dtype: np.dtype) -> np.ndarray:
    size = dtype.itemsize
    packed = np.frombuffer(payload, np.uint8).reshape(size, 8, n // 8)
    bits = np.unpackbits(packed, axis=-1, bitorder="little").transpose(2, 0, 1)
    return np.packbits(bits, axis=-1, bitorder="little").reshape(-1).view(dtype)


def bslz4_block_elements(itemsize: int) -> int:
    """bitshuffle's default block: 8 kB of elements, a multiple of 8, at least 128."""
    return max((8192 // itemsize) // 8 * 8, 128)


def bslz4_compress(data: np.ndarray) -> bytes:
    """bshuf_compress_lz4 with block size 0 (what ADCore calls): per block its
    big-endian LZ4 size and the LZ4 of the bit-shuffled block; a tail of fewer
    than 8 elements is copied as is.  The HDF5 bitshuffle filter's chunk is this
    behind its 12-byte header."""
    import lz4.block

    flat = np.ascontiguousarray(data).reshape(-1)
    block = bslz4_block_elements(flat.dtype.itemsize)
    parts, start = [], 0
    while flat.size - start >= 8:
        n = min(block, (flat.size - start) // 8 * 8)
        packed = lz4.block.compress(bitshuffle(flat[start : start + n]), store_size=False)
        parts.append(struct.pack(">I", len(packed)) + packed)
        start += n
    parts.append(flat[start:].tobytes())
    return b"".join(parts)


def bslz4_decompress(payload: bytes, dtype: np.dtype, count: int) -> np.ndarray:
    import lz4.block

    block = bslz4_block_elements(dtype.itemsize)
    out, pos, done = [], 0, 0
    while count - done >= 8:
        n = min(block, (count - done) // 8 * 8)
        (size,) = struct.unpack_from(">I", payload, pos)
        raw = lz4.block.decompress(
            payload[pos + 4 : pos + 4 + size], uncompressed_size=n * dtype.itemsize
        )
        out.append(unbitshuffle(raw, n, dtype))
        pos += 4 + size
        done += n
    out.append(np.frombuffer(payload[pos:], dtype=dtype))
    return np.concatenate(out)


class NDCodec(PluginDriver):
    plugin_type = "NDPluginCodec"
    templates = ("NDCodec",)
    compression_aware = True

    def process(self, array: NDArray) -> None:
        self.count_array()
        data = array.data
        self.set("CODEC", array.codec)
        self.set("COMPRESSED_SIZE", len(array.compressed) if array.compressed else data.nbytes)
        try:
            if self.get("MODE") == COMPRESS:
                out = self.compress(array)
            else:
                out = self.decompress(array)
        except CodecError as exc:
            self.set("CODEC_STATUS", ERROR)
            self.set("CODEC_ERROR", str(exc))
            self.set("COMP_FACTOR", 1.0)
            self.log.error("%s: %s", self.port_name, exc)
            return self.emit(array)
        self.set("CODEC_STATUS", SUCCESS)
        self.set("CODEC_ERROR", "")
        self.emit(out)

    # -- compression ------------------------------------------------------------
    def compress(self, array: NDArray) -> NDArray:
        choice = COMPRESSORS[self.get("COMPRESSOR")]
        if choice == "None" or array.codec:
            self.set("COMP_FACTOR", 1.0)
            return array
        data = np.ascontiguousarray(array.data)
        if choice == "JPEG":
            name, payload = "jpeg", self._jpeg(data, array)
        elif choice == "Zlib":
            name, payload = "zlib", zlib.compress(data.tobytes(), self.get("ZLIB_CLEVEL"))
        elif choice == "Blosc":
            name, payload = "blosc", self._blosc().encode(data)
        elif choice == "LZ4":
            import lz4.block

            name, payload = "lz4", lz4.block.compress(data.tobytes(), store_size=False)
        elif choice == "LZ4HDF5":
            name = "lz4hdf5"
            payload = lz4hdf5_compress(data.tobytes(), self.get("LZ4HDF5_BLOCKSIZE"))
        elif choice == "BSLZ4":
            name, payload = "bslz4", bslz4_compress(data)
        else:
            raise CodecError(f"{choice} compression is not simulated")
        self.set("COMP_FACTOR", data.nbytes / max(len(payload), 1))
        return dataclasses.replace(
            array, codec=name, compressed=bytes(payload), attributes=dict(array.attributes)
        )

    def _blosc(self) -> Any:
        from numcodecs import Blosc

        return Blosc(
            cname=BLOSC_NAMES[self.get("BLOSC_COMPRESSOR")],
            clevel=self.get("BLOSC_CLEVEL"),
            shuffle=self.get("BLOSC_SHUFFLE"),
        )

    def _jpeg(self, data: np.ndarray, array: NDArray) -> bytes:
        if data.dtype != np.uint8:
            raise CodecError("JPEG only supports 8-bit data")
        from PIL import Image

        buffer = io.BytesIO()
        mode = "RGB" if data.ndim == 3 else "L"
        Image.fromarray(data, mode=mode).save(buffer, "JPEG", quality=self.get("JPEG_QUALITY"))
        return buffer.getvalue()

    # -- decompression ----------------------------------------------------------
    def decompress(self, array: NDArray) -> NDArray:
        if not array.codec or array.compressed is None:
            self.set("COMP_FACTOR", 1.0)
            return array
        payload, dtype, shape = array.compressed, array.data.dtype, array.data.shape
        if array.codec == "jpeg":
            from PIL import Image

            values = np.asarray(Image.open(io.BytesIO(payload)))
        else:
            if array.codec == "zlib":
                raw = zlib.decompress(payload)
            elif array.codec == "blosc":
                from numcodecs import Blosc

                raw = bytes(Blosc().decode(payload))
            elif array.codec == "lz4":
                import lz4.block

                raw = lz4.block.decompress(payload, uncompressed_size=array.data.nbytes)
            elif array.codec == "lz4hdf5":
                raw = lz4hdf5_decompress(payload)
            elif array.codec == "bslz4":
                raw = bslz4_decompress(payload, dtype, array.data.size).tobytes()
            else:
                raise CodecError(f"cannot decompress codec {array.codec!r}")
            values = np.frombuffer(raw, dtype=dtype)
        self.set("COMP_FACTOR", array.data.nbytes / max(len(payload), 1))
        data = np.ascontiguousarray(values.reshape(shape).astype(dtype, copy=False))
        return dataclasses.replace(
            array, data=data, codec="", compressed=None, attributes=dict(array.attributes)
        )
