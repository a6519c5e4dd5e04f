"""fastkm.png: palette PNGs that read back as the same pixels, and the banded deflate."""

import io
import re
import zlib

import numpy as np
import pytest
from PIL import Image

from fastkm import png
from fastkm.images import write_png
from fastkm.palette import PaletteImage


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
    for one_band in (raw[:999], b""):
        assert png.deflate(one_band, 6, threads, row_bytes=7) == zlib.compress(one_band, 6)


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


U8 = np.uint8
GOOD_PALETTE = np.zeros((3, 3), U8)
GOOD_INDICES = np.zeros((2, 2), U8)


@pytest.mark.parametrize("palette, indices, error, message", [
    (np.array([[0, 0, 0], [300, 128, -1]]), GOOD_INDICES, ValueError,
     "palette values must be in 0..255, got -1..300"),
    (np.array([[0.0, 0, 0], [127.6, 0, 0]]), GOOD_INDICES, TypeError,
     "palette must hold integers, got dtype float64"),
    (np.zeros((3, 3), bool), GOOD_INDICES, TypeError, "palette must hold integers, got dtype bool"),
    (np.zeros((300, 3), U8), GOOD_INDICES, ValueError, "1 <= K <= 256, got shape (300, 3)"),
    (np.zeros((0, 3), U8), GOOD_INDICES, ValueError, "1 <= K <= 256, got shape (0, 3)"),
    (np.zeros((3, 2), U8), GOOD_INDICES, ValueError, "(K, 1|3|4)"),
    (np.zeros(3, U8), GOOD_INDICES, ValueError, "(K, 1|3|4)"),
    (GOOD_PALETTE, np.zeros((0, 5), U8), ValueError,
     "indices must be a non-empty (H, W) array, got shape (0, 5)"),
    (GOOD_PALETTE, np.zeros((2, 2, 1), U8), ValueError, "got shape (2, 2, 1)"),
    (GOOD_PALETTE, np.full((2, 2), 9, U8), ValueError,
     "index 9 out of range for a palette of K = 3 colours"),
    (GOOD_PALETTE, np.array([[0, 300]]), ValueError, "index 300 out of range"),
    (GOOD_PALETTE, np.array([[0, -1]]), ValueError, "indices must be >= 0, got -1"),
    (GOOD_PALETTE, np.zeros((2, 2), np.float32), TypeError,
     "indices must hold integers, got dtype float32"),
])
def test_palette_png_rejects_bad_input(palette, indices, error, message):
    with pytest.raises(error, match=re.escape(message)):
        png.palette_png(palette, indices)


def test_write_png_checks_the_palette_image_and_writes_nothing(tmp_path):
    bad = PaletteImage(np.array([[0, 0, 0], [300, 128, -1]]), np.array([[0, 1]], U8))
    with pytest.raises(ValueError, match=re.escape("palette values must be in 0..255")):
        write_png(tmp_path / "x.png", bad)
    with pytest.raises(ValueError, match="non-empty"):
        write_png(tmp_path / "x.png", PaletteImage(GOOD_PALETTE, np.zeros((0, 5), U8)))
    assert list(tmp_path.iterdir()) == []


def test_palette_png_takes_any_integer_dtype_in_range():
    palette = np.array([[0, 10, 255], [255, 128, 0]], np.int64)
    indices = np.array([[0, 1], [1, 1]], np.int32)
    im = Image.open(io.BytesIO(png.palette_png(palette, indices)))
    assert np.array_equal(np.asarray(im.convert("RGB")), palette[indices])


def _idat_rows(data, row_bytes):
    """The decompressed IDAT of a one-IDAT PNG, as (H, row_bytes) rows."""
    at = data.index(b"IDAT")
    n = int.from_bytes(data[at - 4:at], "big")
    raw = zlib.decompress(data[at + 4:at + 4 + n])
    return np.frombuffer(raw, np.uint8).reshape(-1, row_bytes)


def _drifting(rng, k, h, w, share):
    """Rows that each change ``share`` of the row above at random places: deflate's long
    matches break at every change, runs of the Up filter's zeros do not."""
    rows = [rng.integers(0, k, w, dtype=np.uint8)]
    for _ in range(h - 1):
        row = rows[-1].copy()
        at = rng.random(w) < share
        row[at] = rng.integers(0, k, int(at.sum()), dtype=np.uint8)
        rows.append(row)
    return np.stack(rows)


def _both_streams(palette, indices):
    """palette_png's rows of ``indices``, and the filter-0 and Up/RLE streams of them in
    full, on one thread."""
    bits = png.bit_depth(len(palette))
    rows = png._rows(png._reindexed(*png.checked_palette_image(palette, indices))[1], bits)
    level = png.default_level(bits, indices.size)
    plain = png.deflate(rows.reshape(-1).data, level, 1, rows.shape[1])
    runs = png.deflate(png._up_filtered(rows).reshape(-1).data, level, 1, rows.shape[1],
                       zlib.Z_RLE)
    return rows, plain, runs


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("k", [2, 4, 16])
def test_palette_png_writes_the_smaller_of_filter_none_and_up_with_runs(monkeypatch, threads, k):
    monkeypatch.setattr(png, "BAND_BYTES", 4096)  # 1 to 4 bands: both streams in full
    rng = np.random.default_rng(k)
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    for indices, chosen in [(_drifting(rng, k, 120, 301, 0.02), 2),
                            (rng.integers(0, k, (120, 301), dtype=np.uint8), 0)]:
        data = png.palette_png(palette, indices, threads=threads)
        im = Image.open(io.BytesIO(data))
        assert np.array_equal(np.asarray(im.convert("RGB")), palette[indices])
        rows, plain, runs = _both_streams(palette, indices)
        written = _idat_rows(data, rows.shape[1])
        assert np.all(written[:, 0] == chosen)
        # The smaller stream is written, byte for byte.
        assert (len(runs) < len(plain)) == (chosen == 2)
        assert (runs if chosen == 2 else plain) in data


def test_up_filter_against_its_definition():
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 256, (6, 9), dtype=np.uint8)
    up = png._up_filtered(rows)
    assert np.all(up[:, 0] == 2)
    above = np.vstack([np.zeros((1, 8), np.int64), rows[:-1, 1:].astype(np.int64)])
    assert np.array_equal(up[:, 1:], (rows[:, 1:].astype(np.int64) - above) % 256)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("c", [3, 4])
def test_filter_none_stream_is_cut_short_when_its_sample_bands_lose(monkeypatch, threads, c):
    monkeypatch.setattr(png, "BAND_BYTES", 1024)
    calls = []
    band = png._band

    def counted(raw, cuts, i, level, strategy):
        calls.append(strategy)
        return band(raw, cuts, i, level, strategy)

    monkeypatch.setattr(png, "_band", counted)
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (16, c), dtype=np.uint8)
    want = "RGBA" if c == 4 else "RGB"
    for indices, runs_win in [(_drifting(rng, 16, 200, 301, 0.02), True),
                              (rng.integers(0, 16, (200, 301), dtype=np.uint8), False)]:
        calls.clear()
        data = png.palette_png(palette, indices, threads=threads)
        made = list(calls)
        im = Image.open(io.BytesIO(data))
        assert np.array_equal(np.asarray(im.convert(want)), palette[indices])
        rows, plain, runs = _both_streams(palette, indices)
        n_bands = len(png._cuts(rows.size, rows.shape[1])) - 1
        assert n_bands >= 2 * png.PROBE_EVERY
        assert (runs if runs_win else plain) in data
        sampled = len(range(png.PROBE_EVERY // 2, n_bands, png.PROBE_EVERY))
        # Every band as runs; of filter 0, only the sample when runs win clearly.
        assert made.count(zlib.Z_RLE) == n_bands
        assert made.count(zlib.Z_DEFAULT_STRATEGY) == (sampled if runs_win else n_bands)
