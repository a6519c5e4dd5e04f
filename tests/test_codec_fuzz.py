"""Property and fuzz tests of the .fkm codec.

Any input either decodes to a valid PaletteImage or raises FkmError: no other exception, no
crash, no hang. Damaged strips are also re-wrapped with *correct* CRCs so that garbage reaches
the Numba decoder itself, which must stay inside its buffers.

CI runs a few hundred examples per test with a fixed seed. The long run (documented in
SPEC.md) is, for example:

    FKM_FUZZ_EXAMPLES=100000 /work/venv/bin/python -m pytest tests/test_codec_fuzz.py -q

FKM_FUZZ_SEED changes the seed (default 20261123).
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from fastkm.codec import FkmError, container, decode, encode, read_info
from fastkm.palette import PaletteImage

EXAMPLES = int(os.environ.get("FKM_FUZZ_EXAMPLES", "200"))
SEED = int(os.environ.get("FKM_FUZZ_SEED", "20261123"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def palette_images(draw, max_side=40):
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    k = draw(st.integers(1, 256))
    c = draw(st.sampled_from([1, 3, 4]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    palette = rng.integers(0, 256, (k, c), dtype=np.uint8)
    used = rng.integers(0, k, draw(st.integers(1, 6)))  # few distinct values: runs and edges
    mode = draw(st.sampled_from(["few", "any", "rows"]))
    if mode == "few":
        indices = used[rng.integers(0, len(used), (h, w))]
    elif mode == "rows":
        indices = np.repeat(used[rng.integers(0, len(used), (h, 1))], w, axis=1)
    else:
        indices = rng.integers(0, k, (h, w))
    return PaletteImage(palette, indices.astype(np.uint8))


def check_decodes_or_fkm_error(data: bytes) -> None:
    try:
        out = decode(data)
    except FkmError:
        pass
    else:
        k = out.palette.shape[0]
        assert out.indices.dtype == np.uint8 and out.palette.dtype == np.uint8
        assert 1 <= k <= 256 and out.palette.shape[1] in (1, 3, 4)
        assert int(out.indices.max()) < k
        info = read_info(data)
        assert out.indices.shape == (info["height"], info["width"])


@seed(SEED)
@FUZZ
@given(img=palette_images(), strip_height=st.integers(1, 40), reorder=st.booleans())
def test_random_images_round_trip(img, strip_height, reorder):
    sh = min(strip_height, img.indices.shape[0])
    back = decode(encode(img, strip_height=sh, reorder=reorder))
    np.testing.assert_array_equal(back.palette, img.palette)
    np.testing.assert_array_equal(back.indices, img.indices)


@seed(SEED)
@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(data):
    check_decodes_or_fkm_error(data)
    check_decodes_or_fkm_error(container.MAGIC + b"\x01" + data)


@seed(SEED)
@FUZZ
@given(img=palette_images(max_side=24), data=st.data())
def test_mutated_files(img, data):
    """Bit flips, byte edits, truncations and splices of a valid file, CRCs left as they are."""
    raw = bytearray(encode(img, strip_height=data.draw(st.integers(1, 24))
                           if img.indices.shape[0] >= 24 else None))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "byte", "cut", "insert", "delete"]))
        if not raw:
            break
        i = data.draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "byte":
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:]
        elif op == "insert":
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del raw[i:i + data.draw(st.integers(1, 8))]
    check_decodes_or_fkm_error(bytes(raw))


HEADER_FIELDS = ["magic", "version", "channels", "coder", "flags", "width", "height",
                 "strip_height", "n_colors", "n_strips"]
FIELD_VALUES = {
    "version": st.integers(0, 255), "channels": st.integers(0, 255),
    "coder": st.integers(0, 255), "flags": st.integers(0, 255),
    "width": st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)),
    "height": st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)),
    "strip_height": st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)),
    "n_colors": st.integers(0, 65535), "n_strips": st.integers(0, 65535),
}


@seed(SEED)
@FUZZ
@given(img=palette_images(max_side=24), data=st.data())
def test_edited_header_fields_with_valid_crc(img, data):
    """Header edits that pass the header CRC, so every field check is reached."""
    raw = encode(img)
    values = dict(zip(HEADER_FIELDS, container.HEADER.unpack_from(raw, 0)))
    for name in data.draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), min_size=1, max_size=3)):
        values[name] = data.draw(FIELD_VALUES[name])
    head = container.HEADER.pack(*(values[n] for n in HEADER_FIELDS))
    check_decodes_or_fkm_error(head + struct.pack("<I", zlib.crc32(head)) + raw[container.HEADER_SIZE:])


@seed(SEED)
@FUZZ
@given(img=palette_images(max_side=24), data=st.data())
def test_garbage_strips_with_valid_crcs(img, data):
    """Damaged or foreign strip bytes whose CRCs match reach the decoder kernel itself."""
    raw = encode(img)
    lay = container.parse(raw)
    strips = [bytearray(raw[int(o):int(o) + int(n)]) for o, n in zip(lay.offsets, lay.lengths)]
    for s in strips:
        how = data.draw(st.sampled_from(["flip", "random", "cut", "grow", "keep"]))
        if how == "flip":
            s[data.draw(st.integers(0, len(s) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "random":
            s[:] = data.draw(st.binary(min_size=1, max_size=64))
        elif how == "cut" and len(s) > 1:
            del s[data.draw(st.integers(1, len(s) - 1)):]
        elif how == "grow":
            s.extend(data.draw(st.binary(min_size=1, max_size=16)))
    k = data.draw(st.sampled_from([lay.n_colors, max(1, lay.n_colors - 1), min(256, lay.n_colors + 1)]))
    palette = np.resize(lay.palette, (k, lay.channels))
    perm = lay.permutation if lay.permutation is not None and k == lay.n_colors else None
    packed = container.pack(lay.width, lay.height, palette, perm, lay.strip_height,
                            [bytes(s) for s in strips])
    check_decodes_or_fkm_error(packed)
