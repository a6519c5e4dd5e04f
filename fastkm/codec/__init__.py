"""The .fkm palette image format (SPEC.md): ``encode``/``decode`` bytes, ``save``/``load`` files.

A file holds the palette and the index plane; the plane is cut into horizontal strips, each
coded independently by a context-mixing binary arithmetic coder (``coder.py``), so strips are
coded in parallel and a damaged strip is caught by its own CRC. Every malformed input raises
``FkmError`` (a ``ValueError``) before any allocation sized by the file or any compiled kernel
touches it.
"""

from __future__ import annotations

import contextlib
import os
import zlib

import numba
import numpy as np

from ..fileio import atomic_write_bytes
from ..palette import PaletteImage
from . import coder
from .container import MAX_PIXELS, MAX_STRIPS, FkmError, Layout, n_strips_for, pack, parse

__all__ = ["FkmError", "MAX_PIXELS", "encode", "decode", "save", "load", "read_info",
           "palette_order"]

# Strips of at least this many pixels keep the per-strip model warm-up cost small (< 1 %);
# up to TARGET_STRIPS strips give both cores several strips each on large photos.
MIN_STRIP_PIXELS = 1 << 18
TARGET_STRIPS = 16
# Below this many pixels the strips run on one thread: waking the pool costs more than the
# work, and far more when the machine is busy.
SERIAL_BELOW = 1 << 17
_IDENTITY = np.arange(256, dtype=np.uint8)


@contextlib.contextmanager
def _threads(pixels: int, n_strips: int):
    """Yield the number of lanes (threads) to spread the strips over."""
    if pixels >= SERIAL_BELOW and n_strips > 1:
        yield min(n_strips, numba.get_num_threads())
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield 1
    finally:
        numba.set_num_threads(before)


def _check_image(img) -> tuple[np.ndarray, np.ndarray]:
    try:
        palette, indices = img.palette, img.indices
    except AttributeError:
        raise TypeError(f"expected an object with .palette and .indices, got {type(img).__name__}")
    palette = np.asarray(palette)
    indices = np.asarray(indices)
    if palette.dtype != np.uint8 or indices.dtype != np.uint8:
        raise ValueError(f"palette and indices must be uint8, got {palette.dtype} and {indices.dtype}")
    if palette.ndim != 2 or palette.shape[1] not in (1, 3, 4):
        raise ValueError(f"palette must be (K, C) with C in 1, 3, 4, got shape {palette.shape}")
    k = palette.shape[0]
    if not 1 <= k <= 256:
        raise ValueError(f"palette size K = {k}, must be in 1..256")
    if indices.ndim != 2 or indices.size == 0:
        raise ValueError(f"indices must be a non-empty (H, W) array, got shape {indices.shape}")
    h, w = indices.shape
    if h * w > MAX_PIXELS:
        raise ValueError(f"image of {h}x{w} = {h * w} pixels is over the limit of {MAX_PIXELS}")
    top = int(indices.max())
    if top >= k:
        raise ValueError(f"index {top} >= palette size K = {k}")
    # The coder shares one body with the decoder, which writes the plane: a read-only
    # array (e.g. np.asarray of a Pillow image) would not compile, so copy it.
    if not indices.flags.writeable:
        indices = indices.copy()
    return np.ascontiguousarray(palette), np.ascontiguousarray(indices)


def palette_order(palette: np.ndarray) -> np.ndarray:
    """Coding order of the palette: a nearest-neighbour chain from the darkest colour.

    Neighbouring symbols then have similar colours, so the MSB-first symbol tree's upper
    decisions separate colour families and its lower ones are easy to predict. Returns
    ``order`` with ``order[symbol] = palette index``.
    """
    p = palette.astype(np.int64)
    k = len(p)
    weights = np.array([299, 587, 114]) if p.shape[1] >= 3 else np.array([1000])
    lum = p[:, :len(weights)] @ weights
    dist = ((p[:, None, :] - p[None, :, :]) ** 2).sum(axis=2)
    taken = np.iinfo(np.int64).max
    cur = int(np.argmin(lum))
    order = [cur]
    dist[:, cur] = taken
    for _ in range(k - 1):
        cur = int(np.argmin(dist[cur]))  # ties go to the lowest palette index
        order.append(cur)
        dist[:, cur] = taken
    return np.array(order, dtype=np.int64)


def _strip_height(h: int, w: int) -> int:
    sh = max(-(-h // TARGET_STRIPS), -(-MIN_STRIP_PIXELS // w), -(-h // MAX_STRIPS))
    return min(sh, h)


def encode(img, *, strip_height: int | None = None, reorder: bool = True,
           verify: bool = False) -> bytes:
    """Encode a palette image (anything with ``.palette`` (K, C) and ``.indices`` (H, W)).

    ``strip_height`` overrides the automatic choice; ``reorder=False`` codes the palette in
    its given order; ``verify=True`` decodes the result and checks it before returning.
    """
    palette, indices = _check_image(img)
    h, w = indices.shape
    k = palette.shape[0]
    if strip_height is not None and (isinstance(strip_height, bool)
                                     or not isinstance(strip_height, (int, np.integer))):
        raise TypeError(f"strip_height must be an integer, got {strip_height!r}")
    sh = _strip_height(h, w) if strip_height is None else int(strip_height)
    if not 1 <= sh <= h or n_strips_for(h, sh) > MAX_STRIPS:
        raise ValueError(f"strip_height {sh} must be in 1..{h} and give at most {MAX_STRIPS} strips")
    perm = None
    plane = indices
    if reorder:
        order = palette_order(palette)
        if np.any(order != np.arange(k)):
            perm = order
            inv = np.empty(k, dtype=np.uint8)
            inv[order] = np.arange(k, dtype=np.uint8)
            plane = inv[indices]
    strips = _encode_plane(plane, sh, k)
    data = pack(w, h, palette, perm, sh, strips)
    if verify:
        back = decode(data)
        if not (np.array_equal(back.indices, indices) and np.array_equal(back.palette, palette)):
            raise RuntimeError("fkm encoder self-check failed: decoded image differs")
    return data


def _encode_plane(plane: np.ndarray, sh: int, k: int) -> list[bytes]:
    w = plane.shape[1]
    nb = coder.table_bits.py_func(k, sh * w)[0]  # in Python: no kernel to load for it
    # Room for about 2 bytes per pixel first (8-bit indices never need more than ~1.1);
    # retry once with the hard bound of 12 bits per decision if a strip overflows.
    for cap in (2 * sh * w + 64, 2 * sh * w * (2 + nb) + 64):
        n = n_strips_for(plane.shape[0], sh)
        out = np.empty(n * cap, dtype=np.uint8)
        starts = np.arange(n, dtype=np.int64) * cap
        with _threads(plane.size, n) as lanes:
            status, lengths = coder.code_strips(plane, sh, k, out, starts, starts + cap, False,
                                                _IDENTITY, lanes, coder.SQUASH, coder.STRETCH,
                                                coder.RATE)
        if not np.any(status == coder.ERR_OVERFLOW):
            return [out[s * cap:s * cap + lengths[s]].tobytes() for s in range(n)]
    raise RuntimeError("fkm encoder: coded strip exceeds its worst-case size")


def decode(data: bytes, *, max_pixels: int = MAX_PIXELS) -> PaletteImage:
    """Decode .fkm bytes into a PaletteImage; raise FkmError for any malformed input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode expects bytes, got {type(data).__name__}")
    data = bytes(data)
    lay = parse(data, max_pixels=max_pixels)
    # The kernel shares one body with the encoder, which writes to its buffer: give it a
    # private writable copy of the file.
    buf = np.frombuffer(bytearray(data), dtype=np.uint8)
    perm = lay.permutation if lay.permutation is not None else _IDENTITY
    plane = np.zeros((lay.height, lay.width), dtype=np.uint8)
    with _threads(lay.width * lay.height, lay.n_strips) as lanes:
        status, where = coder.code_strips(
            plane, lay.strip_height, lay.n_colors, buf, lay.offsets, lay.offsets + lay.lengths,
            True, perm, lanes, coder.SQUASH, coder.STRETCH, coder.RATE)
    for s in range(lay.n_strips):
        if status[s] == coder.ERR_INDEX:
            y, x = divmod(int(where[s]), lay.width)
            raise FkmError(f"strip {s}: decoded index >= K = {lay.n_colors} at pixel (row {y}, column {x})")
        if status[s] == coder.ERR_LENGTH:
            raise FkmError(f"strip {s}: coded data ends at byte {int(where[s])} of "
                           f"{int(lay.lengths[s])} (length mismatch)")
    return PaletteImage(lay.palette, plane)


def read_info(data: bytes) -> dict:
    """Header fields, palette and sizes of a .fkm file, validated as by ``decode`` (strip CRCs
    included) but without decoding the strips."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"read_info expects bytes, got {type(data).__name__}")
    data = bytes(data)
    lay: Layout = parse(data)
    pixels = lay.width * lay.height
    coded = int(lay.lengths.sum())
    return {
        "version": data[4],
        "width": lay.width,
        "height": lay.height,
        "channels": lay.channels,
        "n_colors": lay.n_colors,
        "coder": lay.coder,
        "flags": lay.flags,
        "permuted": lay.permutation is not None,
        "strip_height": lay.strip_height,
        "n_strips": lay.n_strips,
        "strip_bytes": [int(v) for v in lay.lengths],
        "strip_crc32": [f"{c:08x}" for c in lay.crcs],
        "palette": lay.palette,
        "coded_bytes": coded,
        "overhead_bytes": lay.total_bytes - coded,
        "total_bytes": lay.total_bytes,
        "bits_per_pixel": 8.0 * lay.total_bytes / pixels,
        "file_crc32": f"{zlib.crc32(data):08x}",
    }


def save(path: str | os.PathLike, img, overwrite: bool = True) -> None:
    """Encode ``img`` and write it atomically (never a half-written file)."""
    atomic_write_bytes(path, encode(img), overwrite=overwrite)


def load(path: str | os.PathLike) -> PaletteImage:
    with open(path, "rb") as f:
        return decode(f.read())
