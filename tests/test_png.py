"""fastkm.png: palette PNGs that read back as the same pixels, and the banded deflate."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from fastkm import png


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 16, 17, 256])
@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 33)])
def test_palette_png_reads_back_same_pixels(k, c, shape):
    rng = np.random.default_rng(k * 10 + c)
    palette = rng.integers(0, 256, (k, c), dtype=np.uint8)
    if c == 4:
        palette[::2, 3] = 255
    indices = rng.integers(0, k, shape, dtype=np.uint8)
    data = png.palette_png(palette, indices)
    im = Image.open(io.BytesIO(data))
    if c == 1:
        assert im.mode == "L"
        assert np.array_equal(np.asarray(im), palette[indices, 0])
        return
    assert im.mode == "P" and im.info.get("bits", png.bit_depth(k)) == png.bit_depth(k)
    want = "RGBA" if c == 4 else "RGB"
    assert np.array_equal(np.asarray(im.convert(want)), palette[indices])


def test_bit_depth():
    assert [png.bit_depth(k) for k in (1, 2, 3, 4, 5, 16, 17, 256)] == [1, 1, 2, 2, 4, 4, 8, 8]


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_banded_deflate_is_one_zlib_stream(monkeypatch, threads):
    monkeypatch.setattr(png, "BAND_BYTES", 1000)
    rng = np.random.default_rng(threads)
    raw = np.repeat(rng.integers(0, 4, 20011, dtype=np.uint8), 3).tobytes()
    out = png.deflate(raw, 6, threads, row_bytes=7)
    assert zlib.decompress(out) == raw
    # The bands do not depend on the threads: the same bytes on any machine.
    assert out == png.deflate(raw, 6, 1, row_bytes=7)
    assert out != zlib.compress(raw, 6)  # banded, not one stream


def test_reorder_keeps_pixels_and_puts_translucent_entries_first():
    palette = np.array([[200, 200, 200, 255], [0, 0, 0, 10], [100, 100, 100, 255],
                        [50, 50, 50, 0]], np.uint8)
    indices = np.array([[0, 1, 2, 3]], np.uint8)
    pal2, idx2 = png._reindexed(palette, indices)
    assert np.array_equal(pal2[idx2], palette[indices])
    assert sorted(pal2[:2, 3].tolist()) == [0, 10]


def test_optimize_keeps_pixels():
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (20, 3), dtype=np.uint8)
    indices = np.repeat(rng.integers(0, 20, (8, 9), dtype=np.uint8), 4, axis=1)
    data = png.palette_png(palette, indices, optimize=True)
    im = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(im.convert("RGB")), palette[indices])


def test_default_level_follows_the_row_width_and_size():
    assert png.default_level(4, 4_000_000) == 8
    assert png.default_level(1, png.LEVEL8_MAX_PIXELS) == 8
    assert png.default_level(4, png.LEVEL8_MAX_PIXELS + 1) == 7
    assert png.default_level(8, 1000) == 7
    # The zlib header's FLEVEL says "maximum compression" for levels 7-9, as zlib's own.
    rng = np.random.default_rng(0)
    data = png.palette_png(rng.integers(0, 255, (16, 3), dtype=np.uint8),
                           rng.integers(0, 16, (50, 60), dtype=np.uint8))
    idat = data.index(b"IDAT") + 4
    assert data[idat:idat + 2] == zlib.compress(b"x", 8)[:2] == b"\x78\xda"
