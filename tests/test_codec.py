"""The .fkm codec: bit-exact round trips, every error path by its message, the SPEC.md example."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from fastkm.codec import FkmError, container, decode, encode, load, read_info, save
from fastkm.palette import PaletteImage

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "images"
PHOTOS = sorted(IMAGES.glob("*.jpg")) if IMAGES.is_dir() else []


def random_image(h, w, k, c, seed=0, smooth=True):
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (k, c), dtype=np.uint8)
    if smooth:
        # Blocky planes look like quantized photos and exercise the "same as W/N" paths.
        coarse = rng.integers(0, k, (h // 4 + 1, w // 4 + 1))
        indices = np.repeat(np.repeat(coarse, 4, 0), 4, 1)[:h, :w]
        noise = rng.random((h, w)) < 0.1
        indices = np.where(noise, rng.integers(0, k, (h, w)), indices)
    else:
        indices = rng.integers(0, k, (h, w))
    return PaletteImage(palette, indices.astype(np.uint8))


def assert_same(a, b):
    assert a.palette.dtype == np.uint8 and a.indices.dtype == np.uint8
    np.testing.assert_array_equal(a.palette, b.palette)
    np.testing.assert_array_equal(a.indices, b.indices)


@pytest.mark.parametrize("h, w, k, c", [
    (1, 1, 1, 3), (1, 1, 256, 4), (1, 97, 5, 3), (113, 1, 7, 3), (40, 30, 1, 3),
    (33, 65, 2, 1), (64, 64, 256, 3), (37, 101, 256, 4), (50, 77, 16, 1), (31, 43, 3, 4),
    (129, 257, 200, 3), (7, 1023, 17, 3),
])
@pytest.mark.parametrize("smooth", [True, False])
def test_round_trip_edge_cases(h, w, k, c, smooth):
    img = random_image(h, w, k, c, seed=h * w + k, smooth=smooth)
    assert_same(decode(encode(img)), img)


def test_all_256_indices_used_and_duplicate_colours():
    palette = np.zeros((256, 3), np.uint8)  # every colour the same: the chain order is arbitrary
    indices = np.arange(256 * 9, dtype=np.int64).reshape(48, 48) % 256
    img = PaletteImage(palette, indices.astype(np.uint8))
    assert_same(decode(encode(img)), img)


@pytest.mark.parametrize("strip_height", [1, 2, 5, 39, 40])
@pytest.mark.parametrize("reorder", [True, False])
def test_strip_heights_and_order(strip_height, reorder):
    img = random_image(40, 23, 12, 3, seed=strip_height)
    data = encode(img, strip_height=strip_height, reorder=reorder)
    info = read_info(data)
    assert info["strip_height"] == strip_height
    assert info["n_strips"] == -(-40 // strip_height)
    assert info["permuted"] == reorder  # a random palette is never already in chain order
    assert_same(decode(data), img)


def test_encode_is_deterministic_and_verify_passes():
    img = random_image(60, 70, 30, 3, seed=3)
    assert encode(img) == encode(img, verify=True)


def test_read_info_fields():
    img = random_image(45, 67, 9, 4, seed=5)
    data = encode(img)
    info = read_info(data)
    assert (info["width"], info["height"], info["channels"], info["n_colors"]) == (67, 45, 4, 9)
    assert info["version"] == 1 and info["coder"] == 1
    np.testing.assert_array_equal(info["palette"], img.palette)
    assert info["total_bytes"] == len(data)
    assert info["coded_bytes"] == sum(info["strip_bytes"])
    assert info["coded_bytes"] + info["overhead_bytes"] == len(data)
    assert info["bits_per_pixel"] == pytest.approx(8 * len(data) / (45 * 67))


def test_save_load(tmp_path):
    img = random_image(20, 30, 6, 3)
    path = tmp_path / "x.fkm"
    save(path, img)
    assert_same(load(path), img)
    with pytest.raises(FileExistsError):
        save(path, img, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.fkm"]  # no temporary left over


def test_quantizer_subclass_is_accepted():
    class Quantized(PaletteImage):
        pass

    img = random_image(10, 10, 4, 3)
    assert_same(decode(encode(Quantized(img.palette, img.indices))), img)


@pytest.mark.parametrize("palette, indices, message", [
    (np.zeros((4, 3), np.float32), np.zeros((2, 2), np.uint8), "must be uint8"),
    (np.zeros((4, 3), np.uint8), np.zeros((2, 2), np.int64), "must be uint8"),
    (np.zeros((4, 2), np.uint8), np.zeros((2, 2), np.uint8), "C in 1, 3, 4"),
    (np.zeros((0, 3), np.uint8), np.zeros((2, 2), np.uint8), "K = 0"),
    (np.zeros((257, 3), np.uint8), np.zeros((2, 2), np.uint8), "K = 257"),
    (np.zeros((4, 3), np.uint8), np.zeros((2, 2, 1), np.uint8), "(H, W)"),
    (np.zeros((4, 3), np.uint8), np.zeros((0, 5), np.uint8), "non-empty"),
    (np.zeros((4, 3), np.uint8), np.full((2, 2), 4, np.uint8), "index 4 >= palette size K = 4"),
])
def test_encode_rejects_bad_images(palette, indices, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        encode(PaletteImage(palette, indices))


@pytest.mark.parametrize("strip_height", [2.5, 2.0, True, "2"])
def test_encode_rejects_non_integer_strip_height(strip_height):
    with pytest.raises(TypeError, match=f"strip_height must be an integer, got {strip_height!r}"):
        encode(random_image(10, 10, 4, 3), strip_height=strip_height)
    assert read_info(encode(random_image(10, 10, 4, 3), strip_height=np.int64(3)))["n_strips"] == 4


def test_encode_rejects_non_images():
    with pytest.raises(TypeError, match="palette"):
        encode(np.zeros((3, 3), np.uint8))


# ---- malformed files: each error by its message -------------------------------------------

def small_file():
    img = random_image(30, 20, 6, 3, seed=11)
    return img, encode(img, strip_height=8)


def with_header(data: bytes, **fields) -> bytes:
    """Rewrite header fields of a valid file and give the header a correct CRC again."""
    names = ["magic", "version", "channels", "coder", "flags", "width", "height",
             "strip_height", "n_colors", "n_strips"]
    values = dict(zip(names, container.HEADER.unpack_from(data, 0)))
    values.update(fields)
    head = container.HEADER.pack(*(values[n] for n in names))
    return head + struct.pack("<I", zlib.crc32(head)) + data[container.HEADER_SIZE:]


def test_error_bad_magic():
    _, data = small_file()
    with pytest.raises(FkmError, match="bad magic"):
        decode(b"\x89PNG" + data[4:])


def test_error_unknown_version():
    _, data = small_file()
    with pytest.raises(FkmError, match="unknown version 2"):
        decode(data[:4] + b"\x02" + data[5:])


@pytest.mark.parametrize("cut", [0, 3, 4, 10, 27, 28, 40, 60, 100, -9, -1])
def test_error_truncated(cut):
    _, data = small_file()
    short = data[:cut] if cut >= 0 else data[:len(data) + cut]
    with pytest.raises(FkmError, match=rf"truncated at byte {len(short)}|bad end marker"):
        decode(short)


def test_error_header_crc():
    _, data = small_file()
    bad = bytearray(data)
    bad[9] ^= 0x01  # width
    with pytest.raises(FkmError, match="header CRC mismatch"):
        decode(bytes(bad))


def test_error_table_crc():
    _, data = small_file()
    bad = bytearray(data)
    bad[container.HEADER_SIZE] ^= 0x80  # first palette byte
    with pytest.raises(FkmError, match="palette/strip table CRC mismatch"):
        decode(bytes(bad))


@pytest.mark.parametrize("strip", [0, 2, 3])
def test_error_strip_crc_names_the_strip(strip):
    _, data = small_file()
    lay = container.parse(data)
    bad = bytearray(data)
    bad[int(lay.offsets[strip])] ^= 0x10
    with pytest.raises(FkmError, match=f"CRC mismatch in strip {strip}"):
        decode(bytes(bad))
    with pytest.raises(FkmError, match=f"CRC mismatch in strip {strip}"):
        read_info(bytes(bad))


@pytest.mark.parametrize("fields, message", [
    (dict(n_colors=0), "palette size K = 0"),
    (dict(n_colors=257), "palette size K = 257"),
    (dict(channels=2), "channels = 2"),
    (dict(coder=7), "unknown coder id 7"),
    (dict(flags=0x82), "unknown flags"),
    (dict(width=0), "width and height must be >= 1"),
    (dict(width=100_000, height=100_000), "over the limit"),
    (dict(strip_height=0), "strip height 0"),
    (dict(strip_height=31), "strip height 31"),
    (dict(n_strips=5), "strip count 5 does not match"),
])
def test_error_header_fields(fields, message):
    _, data = small_file()
    with pytest.raises(FkmError, match=re.escape(message)):
        decode(with_header(data, **fields))


def test_error_max_pixels_argument():
    _, data = small_file()
    with pytest.raises(FkmError, match="over the limit of 100"):
        decode(data, max_pixels=100)


def test_error_pixels_cannot_fit_in_strip():
    # A tiny file claiming a huge plane must be refused before the plane is allocated.
    data = container.pack(20000, 19000, np.zeros((2, 3), np.uint8), None, 19000, [b"\x00"])
    with pytest.raises(FkmError, match="cannot fit in 1 coded bytes"):
        decode(data)


def test_error_zero_length_strip():
    data = container.pack(4, 4, np.zeros((2, 3), np.uint8), None, 4, [b""])
    with pytest.raises(FkmError, match="coded length 0"):
        decode(data)


def test_error_trailing_bytes_and_end_marker():
    _, data = small_file()
    with pytest.raises(FkmError, match="3 unexpected bytes after the end marker"):
        decode(data + b"abc")
    with pytest.raises(FkmError, match="bad end marker"):
        decode(data[:-1] + b"\x02")


def test_error_bad_permutation():
    img = random_image(10, 10, 4, 3)
    lay = container.parse(encode(img))
    strips = [encode(img)[int(o):int(o) + int(n)] for o, n in zip(lay.offsets, lay.lengths)]
    data = container.pack(10, 10, lay.palette, np.array([0, 1, 1, 3]), lay.strip_height, strips)
    with pytest.raises(FkmError, match="not a permutation"):
        decode(data)


def test_error_decoded_index_over_k():
    # K = 4 and K = 3 share the symbol tree depth and model layout, so strips coded for K = 4
    # decode under K = 3 until symbol 3 appears: that must be reported, not stored.
    indices = np.zeros((6, 9), np.uint8)
    indices[2:, 4:] = 3
    img = PaletteImage(np.zeros((4, 3), np.uint8), indices)
    good = encode(img, reorder=False)
    lay = container.parse(good)
    strips = [good[int(o):int(o) + int(n)] for o, n in zip(lay.offsets, lay.lengths)]
    data = container.pack(9, 6, np.zeros((3, 3), np.uint8), None, lay.strip_height, strips)
    with pytest.raises(FkmError, match=r"strip 0: decoded index >= K = 3 at pixel \(row 2, column 4\)"):
        decode(data)


def test_error_strip_length_mismatch():
    img = random_image(12, 12, 5, 3)
    good = encode(img, reorder=False)
    lay = container.parse(good)
    strip = good[int(lay.offsets[0]):int(lay.offsets[0] + lay.lengths[0])]
    data = container.pack(12, 12, img.palette, None, 12, [strip + b"\x00" * 8])
    with pytest.raises(FkmError, match="length mismatch"):
        decode(data)


def test_decode_rejects_non_bytes():
    with pytest.raises(TypeError):
        decode("FKM")


def test_error_is_a_value_error():
    assert issubclass(FkmError, ValueError)


# ---- SPEC.md's worked example must be what the encoder writes ----------------------------

def spec_example():
    text = (ROOT / "SPEC.md").read_text()
    m = re.search(r"<!-- example-image -->\s*```\s*(.*?)```", text, re.S)
    rows = [[int(v) for v in line.split()] for line in m.group(1).strip().splitlines()]
    m = re.search(r"<!-- example-palette -->\s*```\s*(.*?)```", text, re.S)
    palette = [[int(v, 16) for v in line.split()] for line in m.group(1).strip().splitlines()]
    m = re.search(r"<!-- example-hex -->\s*```\s*(.*?)```", text, re.S)
    hexdump = bytes.fromhex("".join(
        line.split("|")[0].split(":", 1)[1] for line in m.group(1).strip().splitlines()))
    return PaletteImage(np.array(palette, np.uint8), np.array(rows, np.uint8)), hexdump


def test_spec_example_hex_offsets_are_right():
    text = (ROOT / "SPEC.md").read_text()
    m = re.search(r"<!-- example-hex -->\s*```\s*(.*?)```", text, re.S)
    pos = 0
    for line in m.group(1).strip().splitlines():
        label, rest = line.split("|")[0].split(":", 1)
        assert int(label, 16) == pos, line
        pos += len(bytes.fromhex(rest))


def test_spec_example_matches_encoder():
    img, hexdump = spec_example()
    assert encode(img) == hexdump
    assert_same(decode(hexdump), img)


# ---- real photos ---------------------------------------------------------------------------

@pytest.mark.skipif(not PHOTOS, reason=f"no photos in {IMAGES}")
@pytest.mark.parametrize("k", [16, 64, 256])
def test_photos_round_trip(k):
    from PIL import Image

    for path in PHOTOS:
        im = Image.open(path).convert("RGB")
        im.thumbnail((640, 640))  # full-size photos are round-tripped by bench/bench_codec.py
        q = im.quantize(k, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        palette = np.array(q.getpalette()[:3 * k], np.uint8).reshape(-1, 3)
        indices = np.asarray(q)
        palette = palette[:max(int(indices.max()) + 1, 1)]
        img = PaletteImage(palette, indices)
        data = encode(img)
        assert_same(decode(data), img)
        assert len(data) < indices.size  # a real coder, not a byte per index
