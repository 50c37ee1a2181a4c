"""The frame buffer pool never hands out a buffer that something still references."""

from __future__ import annotations

import numpy as np

from adtoolkit.ioc.simimages import BufferPool, SimImageGenerator

U8 = np.dtype("u1")


def test_buffer_is_reused_only_once_released():
    pool = BufferPool()
    a = pool.get((4, 4), U8)
    b = pool.get((4, 4), U8)
    assert a is not b
    a_id = id(a)
    del a
    assert id(pool.get((4, 4), U8)) == a_id  # released: reused
    view = b[1:]
    del b
    c = pool.get((4, 4), U8)
    assert c.base is None and view.base is not c  # a view keeps its buffer busy


def test_pool_memory_is_capped():
    pool = BufferPool(max_buffers=64, max_bytes=3 * 8)
    held = [pool.get((8,), U8) for _ in range(10)]
    assert len({id(h) for h in held}) == 10  # all distinct, the extra ones not pooled
    assert len(pool._buffers) == 3


def test_published_ramp_frames_are_never_overwritten():
    """Frames kept by a consumer keep their values while later frames are computed."""
    gen = SimImageGenerator(seed=1)
    params = {
        "DATA_TYPE": 1,
        "MAX_SIZE_X": 8,
        "MAX_SIZE_Y": 4,
        "COLOR_MODE": 0,
        "SIM_MODE": 0,
        "SIM_OFFSET": 0.0,
        "SIM_NOISE": 0.0,
        "GAIN": 1.0,
        "SIM_GAIN_X": 1.0,
        "SIM_GAIN_Y": 1.0,
    }
    kept = [gen.compute(params, reset=(i == 0)) for i in range(5)]
    for _ in range(20):  # frames nobody keeps: their buffers get recycled
        gen.compute(params, reset=False)
    y, x = np.mgrid[0:4, 0:8]
    for i, frame in enumerate(kept):
        assert np.array_equal(frame, (x + y + i).astype(np.uint8)), i
