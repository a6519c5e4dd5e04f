"""A palette PNG writer tuned for quantized photos: small files, written fast.

What it does, each choice measured on the photos of ../shared/images (bench/bench_png.py):

- The palette is re-indexed along a nearest-neighbour chain from the darkest colour
  (``codec.palette_order``): neighbouring indices then have similar colours. The pixels are
  unchanged (same RGB(A) at every pixel); only the numbering of the entries moves.
- K <= 16 is written at 4 (K <= 4: 2, K <= 2: 1) bits per pixel, as pngquant does: fewer
  bytes for deflate to see (kite.jpg K = 16: 4-bit 0.957 of pngquant's bytes at level 6
  against 1.011 at 8 bits).
- Rows use filter 0 ("none"): on palette indices the other filters turn runs of one
  index into noise (Sub was better on one photo of six at K = 64 only, and 2-3x slower).
  At up to 4 bits per pixel one more stream is tried, as it costs a tenth of the first:
  every row filtered Up (the change from the row above) and deflated with ``Z_RLE``, runs
  only; the smaller stream is written (:func:`_indices_stream`). Up and RLE win where
  textures shift a little from row to row, which breaks deflate's long matches (volna.jpg
  K = 16: 0.991 of pngquant's bytes against 1.062; 4 of the 7 photos at K = 16, none of
  them at 8 bits).
- The IDAT stream is deflated in row bands on threads (zlib releases the GIL), pigz-style:
  each band is a raw deflate primed with the previous band's last 32 KiB and ended by a
  sync flush, so the bands join into one valid zlib stream with almost no loss of ratio.
- zlib level 8 for up to 16 colours (4-bit rows) up to ``LEVEL8_MAX_PIXELS``, else 7
  (:func:`default_level`). Against pngquant's PNG (its own quantization, zlib level 9), mean
  over the 7 photos at K = 16 / 64 / 256: level 6 0.974 / 0.963 / 0.929, level 7 0.961 /
  0.949 / 0.925, level 8 0.942 / 0.937 / 0.924. Time per MP on one core: level 7 1.2-1.4x
  level 6; level 8 2.4x at 4 bits (<= 0.07 s/MP) but up to 0.19 s/MP at 8 bits, too slow
  there. ``optimize`` hands the file to pyoxipng (optional extra ``fastkm[optimize]``)
  when it is installed, else takes zlib level 9.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
OPTIMIZE_LEVEL = 9
#: Above this many pixels 4-bit rows take level 7 too: volna.jpg (14.7 MP) at level 8 took
#: 0.52 s to deflate on 2 cores against 0.24 s at level 7, for 1.0% fewer bytes.
LEVEL8_MAX_PIXELS = 8_000_000
# Row bands of about this many raw bytes (the last one shorter), however many threads deflate
# them, so that the file is the same bytes on any machine; the window primes each band.
# Several bands per thread even out the threads' work, as a photo's bands differ in cost
# (sky against waves): volna.jpg K = 16 on 2 threads, 207 -> 186 ms at level 6 with 4 bands
# a thread instead of 1, for 0.01% more bytes.
BAND_BYTES = 1 << 19
WINDOW = 32768


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def bit_depth(k: int) -> int:
    """Fewest PNG palette bits for K entries."""
    return 1 if k <= 2 else 2 if k <= 4 else 4 if k <= 16 else 8


def _rows(plane: np.ndarray, bits: int) -> np.ndarray:
    """(H, 1 + row bytes) uint8: filter byte 0, then the row packed at ``bits`` per pixel."""
    h, w = plane.shape
    per = 8 // bits
    wb = -(-w // per)
    out = np.zeros((h, 1 + wb), dtype=np.uint8)
    if per == 1:
        out[:, 1:] = plane
        return out
    padded = np.zeros((h, wb * per), dtype=np.uint8)
    padded[:, :w] = plane
    groups = padded.reshape(h, wb, per)
    packed = out[:, 1:]
    for j in range(per):
        packed |= groups[:, :, j] << np.uint8(8 - bits * (j + 1))
    return out


def _up_filtered(rows: np.ndarray) -> np.ndarray:
    """:func:`_rows`' rows with PNG filter 2 (Up): each byte less the one above, mod 256."""
    up = rows.copy()
    up[1:, 1:] -= rows[:-1, 1:]
    up[:, 0] = 2
    return up


def default_level(bits: int, n_pixels: int) -> int:
    """The zlib level :func:`palette_png` uses for rows of ``bits`` per pixel (see the
    module's notes)."""
    return 8 if bits <= 4 and n_pixels <= LEVEL8_MAX_PIXELS else 7


def _cuts(n: int, row_bytes: int) -> list[int]:
    """Band boundaries of ``n`` raw bytes: bands of about ``BAND_BYTES`` in whole rows of
    ``row_bytes`` (the last one shorter), whatever the threads."""
    bands = max(1, n // BAND_BYTES)
    if bands == 1:
        return [0, n]
    step = -(-n // bands)
    step = -(-step // row_bytes) * row_bytes
    return list(range(0, n, step)) + [n]


def _band(raw: memoryview, cuts: list[int], i: int, level: int, strategy: int) -> bytes:
    """Band ``i`` as raw deflate primed with the 32 KiB before it, ended by a sync flush
    (the last band by the final block)."""
    a, b = cuts[i], cuts[i + 1]
    kw = {"zdict": bytes(raw[max(0, a - WINDOW):a])} if a else {}
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy, **kw)
    last = b == len(raw)
    return c.compress(raw[a:b]) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _stream(raw: memoryview, parts, level: int) -> bytes:
    """The zlib stream of ``raw`` from its deflated bands."""
    header = bytes([0x78, 0xDA if level >= 7 else 0x9C if level >= 6 else 0x5E if level >= 2
                    else 0x01])
    return b"".join([header, *parts, struct.pack(">I", zlib.adler32(raw))])


def _threads(threads: int | None) -> int:
    return min(os.cpu_count() or 1, 8) if threads is None else max(1, threads)


def _bands(pool, raw: memoryview, cuts: list[int], indices, level: int,
           strategy: int) -> list[bytes]:
    """:func:`_band` of each of ``indices``, on ``pool``'s threads, in order."""
    return list(pool.map(lambda i: _band(raw, cuts, i, level, strategy), indices))


def deflate(raw: bytes | memoryview, level: int = 7, threads: int | None = None,
            row_bytes: int = 1, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> bytes:
    """zlib stream of ``raw``, deflated in bands of ``BAND_BYTES`` on ``threads`` threads
    (pigz-style joins), with zlib's ``strategy``.

    Bands start on a multiple of ``row_bytes``. The output is one valid zlib stream, the
    same bytes whatever the number of threads; with one band and the default strategy,
    ``zlib.compress``'s bytes.
    """
    raw = memoryview(raw).cast("B")
    cuts = _cuts(len(raw), row_bytes)
    with ThreadPoolExecutor(min(_threads(threads), len(cuts) - 1)) as pool:
        parts = _bands(pool, raw, cuts, range(len(cuts) - 1), level, strategy)
    return _stream(raw, parts, level)


#: Every PROBE_EVERY-th band of filter-0 rows is deflated first; when those are more than
#: PROBE_MARGIN times the Up/RLE stream's same bands, the rest of them are not deflated
#: (volna.jpg K = 16: band by band 1.03-1.12x, in all 1.07x; 0.39 -> 0.2 s).
PROBE_EVERY = 4
PROBE_MARGIN = 1.03


def _indices_stream(rows: np.ndarray, level: int, threads: int | None) -> bytes:
    """The zlib stream of palette rows (:func:`_rows`): with filter 0 at ``level``, or
    every row filtered Up and deflated as runs (``Z_RLE``), the smaller. The runs cost a
    tenth of the filter-0 stream; that one is cut short when a sample of its bands loses by
    ``PROBE_MARGIN``. Both streams and the choice depend on the rows only, not on the
    threads."""
    plain_raw = memoryview(rows.reshape(-1)).cast("B")
    up_raw = memoryview(_up_filtered(rows).reshape(-1)).cast("B")
    cuts = _cuts(len(plain_raw), rows.shape[1])
    n = len(cuts) - 1
    # Too few bands to judge by a sample: both streams in full.
    probe = range(PROBE_EVERY // 2, n, PROBE_EVERY) if n >= 2 * PROBE_EVERY else range(0)
    with ThreadPoolExecutor(min(_threads(threads), n)) as pool:
        runs = _bands(pool, up_raw, cuts, range(n), level, zlib.Z_RLE)
        plain = dict(zip(probe, _bands(pool, plain_raw, cuts, probe, level,
                                       zlib.Z_DEFAULT_STRATEGY)))
        if probe and (sum(len(plain[i]) for i in probe)
                      > PROBE_MARGIN * sum(len(runs[i]) for i in probe)):
            return _stream(up_raw, runs, level)
        rest = [i for i in range(n) if i not in plain]
        plain.update(zip(rest, _bands(pool, plain_raw, cuts, rest, level,
                                      zlib.Z_DEFAULT_STRATEGY)))
    if sum(map(len, runs)) < sum(map(len, plain.values())):
        return _stream(up_raw, runs, level)
    return _stream(plain_raw, [plain[i] for i in range(n)], level)


def _reindexed(palette: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from .codec import palette_order

    k = len(palette)
    order = palette_order(palette)
    if palette.shape[1] == 4:
        # Entries with alpha < 255 first, so tRNS can stop at the last of them.
        opaque = palette[order, 3] == 255
        order = np.concatenate([order[~opaque], order[opaque]])
    if np.array_equal(order, np.arange(k)):
        return palette, indices
    inv = np.empty(k, dtype=np.uint8)
    inv[order] = np.arange(k, dtype=np.uint8)
    return palette[order], inv[indices]


def _integral(name: str, array) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    return array


def checked_palette_image(palette, indices) -> tuple[np.ndarray, np.ndarray]:
    """``palette`` and ``indices`` as contiguous uint8 arrays, after checking that they make
    a palette image: (K, 1|3|4) integers in 0..255 with 1 <= K <= 256, and a non-empty
    (H, W) integer plane of indices < K. Raises TypeError or ValueError otherwise."""
    palette = _integral("palette", palette)
    indices = _integral("indices", indices)
    if palette.ndim != 2 or palette.shape[1] not in (1, 3, 4) or not 1 <= len(palette) <= 256:
        raise ValueError(f"palette must be (K, 1|3|4) with 1 <= K <= 256, got shape {palette.shape}")
    if palette.dtype != np.uint8:
        lo, hi = int(palette.min()), int(palette.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"palette values must be in 0..255, got {lo}..{hi}")
    if indices.ndim != 2 or indices.size == 0:
        raise ValueError(f"indices must be a non-empty (H, W) array, got shape {indices.shape}")
    top = int(indices.max())
    if top >= len(palette):
        raise ValueError(f"index {top} out of range for a palette of K = {len(palette)} colours")
    if indices.dtype != np.uint8 and int(indices.min()) < 0:
        raise ValueError(f"indices must be >= 0, got {int(indices.min())}")
    return (np.ascontiguousarray(palette, dtype=np.uint8),
            np.ascontiguousarray(indices, dtype=np.uint8))


def palette_png(palette: np.ndarray, indices: np.ndarray, *, optimize: bool = False,
                level: int | None = None, threads: int | None = None,
                reorder: bool = True) -> bytes:
    """PNG bytes of a (K, 3|4) palette and (H, W) indices, or of a (K, 1) grey palette as
    8-bit greyscale (a PNG palette is always RGB and would read back as three channels).

    Bad input (see :func:`checked_palette_image`) raises TypeError or ValueError."""
    palette, indices = checked_palette_image(palette, indices)
    h, w = indices.shape
    c = palette.shape[1]
    oxipng = _oxipng_module() if optimize else None
    chunks = []
    if c == 1:
        rows = _rows(palette[indices, 0], 8)
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    else:
        if reorder:
            palette, indices = _reindexed(palette, indices)
        bits = bit_depth(len(palette))
        rows = _rows(indices, bits)
        ihdr = struct.pack(">IIBBBBB", w, h, bits, 3, 0, 0, 0)
        chunks.append(_chunk(b"PLTE", palette[:, :3].tobytes()))
        if c == 4:
            # Always a tRNS (one entry at least, even if all are opaque), so that an RGBA
            # palette reads back with four channels.
            translucent = np.flatnonzero(palette[:, 3] != 255)
            n = translucent[-1] + 1 if len(translucent) else 1
            chunks.append(_chunk(b"tRNS", palette[:n, 3].tobytes()))
    if level is None:
        # oxipng re-deflates anyway: give it a quick stream, else spend zlib's level 9.
        level = (6 if oxipng is not None else OPTIMIZE_LEVEL) if optimize else default_level(
            8 if c == 1 else bits, h * w)
    if c != 1 and bits <= 4 and oxipng is None:  # oxipng tries the filters itself
        idat = _indices_stream(rows, level, threads)
    else:
        idat = deflate(rows.reshape(-1).data, level, threads, rows.shape[1])
    data = b"".join([SIGNATURE, _chunk(b"IHDR", ihdr), *chunks, _chunk(b"IDAT", idat),
                     _chunk(b"IEND", b"")])
    if oxipng is not None:
        data = _oxipng(oxipng, data)
    return data


def _oxipng_module():
    try:
        import oxipng
    except ImportError:
        return None
    return oxipng


def _oxipng(oxipng, data: bytes) -> bytes:
    """pyoxipng's result (preset 2: volna.jpg K = 16 0.959 of pngquant's bytes in 3.4 s,
    preset 4 the same in 11 s) when smaller, else ``data``."""
    try:
        better = oxipng.optimize_from_memory(data, level=2)
    except oxipng.PngError:  # an optional optimizer never fails the write
        return data
    return better if len(better) < len(data) else data
