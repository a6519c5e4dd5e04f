"""The .fkm container: fixed header, palette, optional permutation, strip table, strips, end marker.

Parsing is pure Python and checks every field against the limits and the actual byte count
before anything is allocated or handed to a Numba kernel (SPEC.md, "Limits" and "Decoding").
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

MAGIC = b"FKM\x1a"
VERSION = 1
CODER_CM = 1  # the context-mixing strip coder of SPEC.md; the only coder of version 1
FLAG_PERMUTED = 1
END_MARKER = b"\x00" * 7 + b"\x01"

HEADER = struct.Struct("<4sBBBBIIIHH")  # magic, version, channels, coder, flags, w, h, strip_h, K, n_strips
HEADER_SIZE = HEADER.size + 4  # + CRC-32 of the fields
STRIP_ENTRY = struct.Struct("<II")  # coded length, CRC-32 of the coded bytes

MAX_PIXELS = 400_000_000  # as QOI: a 400 MB index plane is the most a reader will allocate
MAX_STRIPS = 65535  # the strip count is a u16 field
# No strip can hold more than this many pixels per coded byte (plus the 4 bytes of coder
# state): every pixel costs at least one decision of at least -log2(4095/4096) bits, i.e.
# at most ~22700 pixels per byte. A header claiming more is rejected before allocation.
MAX_PIXELS_PER_BYTE = 32768
CHANNELS = (1, 3, 4)


class FkmError(ValueError):
    """A .fkm file is malformed, damaged or beyond the reader's limits."""


@dataclass
class Layout:
    """Everything the header and strip table say, checked against limits and file size."""

    width: int
    height: int
    channels: int
    n_colors: int
    coder: int
    flags: int
    strip_height: int
    palette: np.ndarray  # (K, C) uint8, stored order
    permutation: np.ndarray | None  # (K,) uint8: coded symbol -> palette index
    offsets: np.ndarray  # (S,) int64, absolute offset of each coded strip
    lengths: np.ndarray  # (S,) int64
    crcs: list
    total_bytes: int

    @property
    def n_strips(self) -> int:
        return len(self.lengths)


def n_strips_for(height: int, strip_height: int) -> int:
    return (height + strip_height - 1) // strip_height


def pack(width: int, height: int, palette: np.ndarray, permutation: np.ndarray | None,
         strip_height: int, strips: list[bytes]) -> bytes:
    """Assemble a file from already coded strips."""
    k, c = palette.shape
    flags = FLAG_PERMUTED if permutation is not None else 0
    fields = HEADER.pack(MAGIC, VERSION, c, CODER_CM, flags, width, height, strip_height, k,
                         len(strips))
    meta = [palette.tobytes()]
    if permutation is not None:
        meta.append(permutation.astype(np.uint8).tobytes())
    meta.extend(STRIP_ENTRY.pack(len(s), zlib.crc32(s)) for s in strips)
    meta = b"".join(meta)
    return b"".join([fields, struct.pack("<I", zlib.crc32(fields)), meta,
                     struct.pack("<I", zlib.crc32(meta)), *strips, END_MARKER])


def _need(data: bytes, end: int, what: str) -> None:
    if len(data) < end:
        raise FkmError(f"truncated at byte {len(data)}: {what} needs {end} bytes")


def head_size(data: bytes) -> int:
    """Bytes from the start of the file through the palette/strip table CRC, read from the
    fixed header (``data`` holds at least HEADER_SIZE bytes); parse_head needs this many."""
    (_, _, c, _, flags, _, _, _, k, ns) = HEADER.unpack_from(data, 0)
    return HEADER_SIZE + k * c + (k if flags & FLAG_PERMUTED else 0) + STRIP_ENTRY.size * ns + 4


def parse_head(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple:
    """Validate the fixed header and the palette/strip table (with their CRCs) from the
    first ``head_size`` bytes of a file; return (w, h, c, k, coder, flags, sh, ns, palette,
    permutation, table end). Reads nothing of the strips, so a reader can learn the size,
    channels and palette of a file without holding all of it."""
    _need(data, 4, "the magic")
    if data[:4] != MAGIC:
        raise FkmError(f"bad magic {data[:4]!r}: not a .fkm file (expected {MAGIC!r})")
    _need(data, 5, "the version")
    if data[4] != VERSION:
        raise FkmError(f"unknown version {data[4]} (this reader knows version {VERSION})")
    _need(data, HEADER_SIZE, "the header")
    (_, _, c, coder, flags, w, h, sh, k, ns) = HEADER.unpack_from(data, 0)
    (hcrc,) = struct.unpack_from("<I", data, HEADER.size)
    if zlib.crc32(data[:HEADER.size]) != hcrc:
        raise FkmError("header CRC mismatch: the header is damaged")
    if c not in CHANNELS:
        raise FkmError(f"channels = {c}, must be 1, 3 or 4")
    if coder != CODER_CM:
        raise FkmError(f"unknown coder id {coder} (this reader knows {CODER_CM})")
    if flags & ~FLAG_PERMUTED:
        raise FkmError(f"unknown flags 0x{flags:02x}")
    if w < 1 or h < 1:
        raise FkmError(f"image size {w}x{h}: width and height must be >= 1")
    if w * h > max_pixels:
        raise FkmError(f"image size {w}x{h} = {w * h} pixels is over the limit of {max_pixels}")
    if not 1 <= k <= 256:
        raise FkmError(f"palette size K = {k}, must be in 1..256")
    if not 1 <= sh <= h:
        raise FkmError(f"strip height {sh} must be in 1..{h} (the image height)")
    if ns != n_strips_for(h, sh):
        raise FkmError(f"strip count {ns} does not match height {h} / strip height {sh}")

    pos = HEADER_SIZE
    meta_len = k * c + (k if flags & FLAG_PERMUTED else 0) + STRIP_ENTRY.size * ns
    _need(data, pos + meta_len + 4, "the palette and strip table")
    (mcrc,) = struct.unpack_from("<I", data, pos + meta_len)
    if zlib.crc32(data[pos:pos + meta_len]) != mcrc:
        raise FkmError("palette/strip table CRC mismatch: the table is damaged")
    palette = np.frombuffer(data, np.uint8, k * c, pos).reshape(k, c).copy()
    pos += k * c
    perm = None
    if flags & FLAG_PERMUTED:
        perm = np.frombuffer(data, np.uint8, k, pos).copy()
        pos += k
        if int(perm.max()) >= k or len(np.unique(perm)) != k:
            raise FkmError(f"palette permutation is not a permutation of 0..{k - 1}")
    return w, h, c, k, coder, flags, sh, ns, palette, perm, pos


def parse(data: bytes, max_pixels: int = MAX_PIXELS, check_strips: bool = True) -> Layout:
    """Read and validate everything but the coded strips themselves."""
    w, h, c, k, coder, flags, sh, ns, palette, perm, pos = parse_head(data, max_pixels)
    table = np.frombuffer(data, "<u4", 2 * ns, pos).reshape(ns, 2).astype(np.int64)
    pos += STRIP_ENTRY.size * ns + 4
    lengths = table[:, 0]
    crcs = table[:, 1].tolist()

    offsets = np.empty(ns, dtype=np.int64)
    for s in range(ns):
        ln = int(lengths[s])
        rows = min(sh, h - s * sh)
        if ln < 1:
            raise FkmError(f"strip {s}: coded length 0 (every strip has at least one byte)")
        if rows * w > MAX_PIXELS_PER_BYTE * (ln + 4):
            raise FkmError(f"strip {s}: {rows * w} pixels cannot fit in {ln} coded bytes")
        offsets[s] = pos
        pos += ln
        _need(data, pos, f"strip {s}")
    _need(data, pos + len(END_MARKER), "the end marker")
    if data[pos:pos + len(END_MARKER)] != END_MARKER:
        raise FkmError(f"bad end marker at byte {pos}")
    if len(data) != pos + len(END_MARKER):
        raise FkmError(f"{len(data) - pos - len(END_MARKER)} unexpected bytes after the end marker")
    if check_strips:
        mv = memoryview(data)
        for s in range(ns):
            o = int(offsets[s])
            if zlib.crc32(mv[o:o + int(lengths[s])]) != crcs[s]:
                raise FkmError(f"CRC mismatch in strip {s}: its coded bytes are damaged")
    return Layout(w, h, c, k, coder, flags, sh, palette, perm, offsets, lengths, crcs, len(data))
