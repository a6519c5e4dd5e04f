"""SPEC.md is exact: a decoder written from it alone, in plain Python, reads our files.

``spec_decode`` below follows SPEC.md line by line and shares no code with fastkm.codec
(only zlib.crc32 and struct). It is slow, so it runs on small images.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from fastkm.codec import encode
from fastkm.palette import PaletteImage

KNOTS = [1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549,
         2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093,
         4094]


def squash(d):
    d = max(-2047, min(2047, d))
    w = d & 127
    i = (d >> 7) + 16
    return (KNOTS[i] * (128 - w) + KNOTS[i + 1] * w + 64) >> 7


STRETCH = [2047] * 4096
_prev = 0
for _d in range(-2047, 2048):
    _v = squash(_d)
    for _p in range(_prev, _v + 1):
        STRETCH[_p] = _d
    _prev = max(_prev, _v + 1)

RATE = [131072 // (2 * n + 3) for n in range(256)]


class SpecError(Exception):
    pass


def decode_strip(data, k, w, rows, trace=None):
    nb = 1
    while 2 ** nb < k:
        nb += 1
    pixels = rows * w
    pb = pixels.bit_length()
    ta = min(22, max(3 * nb, 2 * nb + 3) + 2, pb + 3)
    tg = min(4 * nb, 12, max(1, pb - nb))
    t0, ta_, tb_ = {}, {}, {}  # sparse tables: absent entry = (32768, 0)
    mix = [[22000, 22000, 22000, 0] for _ in range(4 * (nb + 2))]

    def slot(c, b):
        return c if c < 2 ** b else ((c * 0x9E3779B97F4A7C15) % 2 ** 64) >> (64 - b)

    pos = 0

    def byte():
        nonlocal pos
        b = data[pos] if pos < len(data) else 0
        pos += 1
        return b

    x1, x2, x = 0, 0xFFFFFFFF, 0
    for _ in range(4):
        x = (x << 8) | byte()

    def decide(s0, ca, ib, m):
        nonlocal x1, x2, x
        entries = [(t0, s0), (ta_, slot(ca, ta)), (tb_, ib)]
        qs = [tab.get(s, (32768, 0)) for tab, s in entries]
        t = [STRETCH[q >> 4] for q, _ in qs] + [256]
        dot = sum(wi * ti for wi, ti in zip(mix[m], t))
        p = min(4095, max(1, squash(dot >> 16)))
        rng = x2 - x1
        xmid = x1 + (rng >> 12) * p + (((rng & 4095) * p) >> 12)
        bit = 1 if x <= xmid else 0
        if bit:
            x2 = xmid
        else:
            x1 = xmid + 1
        while ((x1 ^ x2) & 0xFF000000) == 0:
            x = ((x << 8) & 0xFFFFFFFF) | byte()
            x1 = (x1 << 8) & 0xFFFFFFFF
            x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
        err = (bit << 12) - p
        mix[m] = [wi + ((ti * err) >> 12) for wi, ti in zip(mix[m], t)]
        for (tab, s), (q, n) in zip(entries, qs):
            target = 65535 if bit else 0
            tab[s] = (q + (((target - q) * RATE[n]) >> 16), n + 1 if n < 255 else n)
        if trace is not None:
            trace.append((p, bit))
        return bit

    X = [[0] * w for _ in range(rows)]
    for y in range(rows):
        r = 0
        for xx in range(w):
            W = X[y][xx - 1] if xx > 0 else (X[y - 1][xx] if y > 0 else 0)
            N = X[y - 1][xx] if y > 0 else W
            NW = X[y - 1][xx - 1] if y > 0 and xx > 0 else N
            NE = X[y - 1][xx + 1] if y > 0 and xx + 1 < w else N
            NN = X[y - 2][xx] if y > 1 else N
            WW = X[y][xx - 2] if xx > 1 else W
            pat = ((W == N) | (W == NW) << 1 | (W == NE) << 2 | (N == NW) << 3 | (N == NE) << 4
                   | (W == WW) << 5 | (N == NN) << 6 | (NW == NE) << 7)
            rb = min(r, 3)
            c2 = W | N << nb
            c4 = c2 | NW << 2 * nb | NE << 3 * nb
            bucket = slot(c4, tg) << (nb + 1)
            if decide(pat | rb << 8, (c2 | (pat & 7) << 2 * nb) << 2 | 1, bucket, pat & 3):
                v = W
            elif N != W and decide(1024 | pat | rb << 8, (c2 | (pat & 7) << 2 * nb) << 2 | 2,
                                   bucket + 2 ** nb, 4 + (pat & 3)):
                v = N
            else:
                node = 1
                for d in range(nb):
                    b = decide(2048 + node, (node | c2 << nb) << 2 | 3,
                               bucket + node, 4 * (2 + d) + (pat & 3))
                    node = 2 * node + b
                v = node - 2 ** nb
                if v >= k:
                    raise SpecError("symbol >= K")
            X[y][xx] = v
            r = r + 1 if v == W else 0
    if not 0 <= pos - len(data) <= 3:
        raise SpecError("length mismatch")
    return X


def spec_decode(data: bytes, trace=None):
    if data[:4] != b"FKM\x1a" or data[4] != 1:
        raise SpecError("magic/version")
    c, coder, flags = data[5], data[6], data[7]
    w, h, r = struct.unpack_from("<III", data, 8)
    k, s = struct.unpack_from("<HH", data, 20)
    if struct.unpack_from("<I", data, 24)[0] != zlib.crc32(data[:24]):
        raise SpecError("header CRC")
    assert c in (1, 3, 4) and coder == 1 and flags & 0xFE == 0 and 1 <= k <= 256
    assert 1 <= r <= h and s == -(-h // r)
    pos = 28
    palette = [list(data[pos + i * c:pos + (i + 1) * c]) for i in range(k)]
    pos += k * c
    perm = list(range(k))
    if flags & 1:
        perm = list(data[pos:pos + k])
        pos += k
    table = [struct.unpack_from("<II", data, pos + 8 * j) for j in range(s)]
    pos += 8 * s
    if struct.unpack_from("<I", data, pos)[0] != zlib.crc32(data[28:pos]):
        raise SpecError("table CRC")
    pos += 4
    rows_out = []
    for j, (length, crc) in enumerate(table):
        strip = data[pos:pos + length]
        if zlib.crc32(strip) != crc:
            raise SpecError(f"strip {j} CRC")
        rows = min(h, (j + 1) * r) - j * r
        rows_out += decode_strip(strip, k, w, rows, trace)
        pos += length
    if data[pos:] != b"\x00" * 7 + b"\x01":
        raise SpecError("end marker")
    return palette, [[perm[v] for v in row] for row in rows_out]


@seed(20261123)
@settings(max_examples=60, deadline=None, database=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), k=st.integers(1, 256),
       c=st.sampled_from([1, 3, 4]), distinct=st.integers(1, 6),
       strip_height=st.integers(1, 12), data_seed=st.integers(0, 2**32 - 1))
def test_spec_decoder_reads_encoder_output(h, w, k, c, distinct, strip_height, data_seed):
    rng = np.random.default_rng(data_seed)
    palette = rng.integers(0, 256, (k, c), dtype=np.uint8)
    used = rng.integers(0, k, distinct)
    indices = used[rng.integers(0, distinct, (h, w))].astype(np.uint8)
    data = encode(PaletteImage(palette, indices), strip_height=min(strip_height, h))
    pal, idx = spec_decode(data)
    assert pal == palette.tolist()
    assert idx == indices.tolist()


@pytest.mark.parametrize("k", [2, 16, 200])
def test_spec_decoder_on_a_larger_blocky_image(k):
    rng = np.random.default_rng(k)
    coarse = rng.integers(0, k, (8, 12))
    indices = np.repeat(np.repeat(coarse, 5, 0), 4, 1)[:37, :45].astype(np.uint8)
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    data = encode(PaletteImage(palette, indices), strip_height=16)
    assert spec_decode(data)[1] == indices.tolist()


def test_spec_example_trace():
    """The worked example of SPEC.md: 12 pixels, the decision count the text states."""
    palette = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.uint8)
    indices = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [2, 2, 2, 1]], np.uint8)
    trace = []
    _, idx = spec_decode(encode(PaletteImage(palette, indices)), trace)
    assert idx == indices.tolist()
    assert [b for _, b in trace[:3]] == [0, 1, 0]
    text = (Path(__file__).resolve().parents[1] / "SPEC.md").read_text()
    block = text[text.index("As (p, bit), in order:"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    listed = [tuple(int(v) for v in m) for m in re.findall(r"\((\d+),([01])\)", block)]
    assert trace == listed
