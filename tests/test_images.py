"""fastkm.images: every supported kind of file in, palette and plain PNGs out."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from fastkm import images
from fastkm.fileio import OutputExistsError
from fastkm.images import ImageError, png_bytes, read_image, write_png
from fastkm.palette import PaletteImage


def expected_8bit(values: np.ndarray) -> np.ndarray:
    """The rounding the reader promises, written out independently in float."""
    return np.floor(values.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)


def write_png16(path, array: np.ndarray, key=None) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour), one row per filter
    type in turn, so the reader's unfiltering is exercised for all five filters; ``key``
    (grey value or RGB triple) adds a tRNS colour key."""
    a = np.asarray(array, dtype=">u2")
    h, w = a.shape[:2]
    c = 1 if a.ndim == 2 else a.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    bpp = 2 * c
    rows = np.frombuffer(a.tobytes(), dtype=np.uint8).reshape(h, w * bpp).astype(np.int32)
    out = []
    for y in range(h):
        row = rows[y]
        up = rows[y - 1] if y else np.zeros_like(row)
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
        kind = y % 5
        if kind == 0:
            pred = np.zeros_like(row)
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = up
        elif kind == 3:
            pred = (left + up) // 2
        else:
            p = left + up - upleft
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        out.append(bytes([kind]) + ((row - pred) % 256).astype(np.uint8).tobytes())

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    trns = b"" if key is None else chunk(b"tRNS", struct.pack(f">{np.size(key)}H",
                                                               *np.ravel(key)))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + trns
                + chunk(b"IDAT", zlib.compress(b"".join(out))) + chunk(b"IEND", b""))


def write_tiff16(path, array: np.ndarray) -> None:
    """A baseline uncompressed little-endian TIFF with 16-bit RGB or RGBA samples, by hand."""
    a = np.asarray(array, dtype="<u2")
    h, w, c = a.shape
    pixels = a.tobytes()
    n_tags = 10 + (c == 4)
    bps_offset = 8 + 2 + 12 * n_tags + 4
    data_offset = bps_offset + 2 * c

    def tag(code, kind, count, value):
        if kind == 3 and count == 1:  # one SHORT, stored left-justified in the value field
            return struct.pack("<HHIHH", code, kind, count, value, 0)
        return struct.pack("<HHII", code, kind, count, value)

    tags = [tag(256, 4, 1, w), tag(257, 4, 1, h), tag(258, 3, c, bps_offset),
            tag(259, 3, 1, 1), tag(262, 3, 1, 2), tag(273, 4, 1, data_offset),
            tag(277, 3, 1, c), tag(278, 4, 1, h), tag(279, 4, 1, len(pixels)),
            tag(284, 3, 1, 1)] + ([tag(338, 3, 1, 2)] if c == 4 else [])
    tags.sort(key=lambda t: struct.unpack("<H", t[:2])[0])
    with open(path, "wb") as f:
        f.write(b"II*\x00" + struct.pack("<IH", 8, len(tags)) + b"".join(tags)
                + b"\x00" * 4 + struct.pack(f"<{c}H", *[16] * c) + pixels)


def pil_save(path, array_or_image, **kwargs):
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    im.save(path, **kwargs)
    return path


# ------------------------------------------------------------------------ modes and formats

@pytest.mark.parametrize("ext", [".png", ".tiff", ".bmp", ".webp"])
def test_lossless_rgb_formats_read_back_exactly(tmp_path, rng, ext):
    a = rng.integers(0, 256, size=(13, 17, 3), dtype=np.uint8)
    kwargs = {"lossless": True} if ext == ".webp" else {}
    got = read_image(pil_save(tmp_path / f"x{ext}", a, **kwargs))
    assert got.dtype == np.uint8 and got.shape == (13, 17, 3)
    np.testing.assert_array_equal(got, a)


def test_greyscale_stays_one_channel(tmp_path, rng):
    a = rng.integers(0, 256, size=(9, 11), dtype=np.uint8)
    got = read_image(pil_save(tmp_path / "g.png", a))
    assert got.shape == (9, 11)
    np.testing.assert_array_equal(got, a)


def test_bilevel_becomes_grey_0_or_255(tmp_path, rng):
    bits = rng.integers(0, 2, size=(8, 12)).astype(bool)
    got = read_image(pil_save(tmp_path / "b.png", Image.fromarray(bits)))
    assert got.shape == (8, 12) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.where(bits, 255, 0))


def test_rgba_keeps_alpha_as_fourth_channel(tmp_path, rng):
    a = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    got = read_image(pil_save(tmp_path / "a.png", a))
    np.testing.assert_array_equal(got, a)


def test_grey_alpha_becomes_rgba_with_equal_colour_channels(tmp_path, rng):
    la = rng.integers(0, 256, size=(6, 9, 2), dtype=np.uint8)
    got = read_image(pil_save(tmp_path / "la.png", Image.fromarray(la, "LA")))
    assert got.shape == (6, 9, 4)
    for ch in range(3):
        np.testing.assert_array_equal(got[..., ch], la[..., 0])
    np.testing.assert_array_equal(got[..., 3], la[..., 1])


def test_palette_png_is_expanded(tmp_path, rng):
    palette = rng.integers(0, 256, size=(5, 3), dtype=np.uint8)
    idx = rng.integers(0, 5, size=(10, 14), dtype=np.uint8)
    im = Image.fromarray(idx)
    im.putpalette(palette.tobytes())
    got = read_image(pil_save(tmp_path / "p.png", im))
    np.testing.assert_array_equal(got, palette[idx])


def test_palette_with_transparency_becomes_rgba(tmp_path, rng):
    palette = rng.integers(0, 256, size=(4, 3), dtype=np.uint8)
    idx = rng.integers(0, 4, size=(6, 6), dtype=np.uint8)
    im = Image.fromarray(idx)
    im.putpalette(palette.tobytes())
    got = read_image(pil_save(tmp_path / "pt.png", im, transparency=2))
    assert got.shape == (6, 6, 4)
    np.testing.assert_array_equal(got[..., :3], palette[idx])
    np.testing.assert_array_equal(got[..., 3], np.where(idx == 2, 0, 255))


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_grey_png_with_colour_key_gets_alpha(tmp_path, rng, bits):
    levels = (1 << bits) - 1
    raw = rng.integers(0, levels + 1, size=(6, 9), dtype=np.uint8)
    raw[0, 0], raw[-1, -1] = 1, 0  # the key (1) and another value both occur
    grey = (raw.astype(np.int32) * 255 // levels).astype(np.uint8)
    im = Image.fromarray(grey).convert("1") if bits == 1 else Image.fromarray(grey)
    pil_save(tmp_path / "g.png", im, transparency=255 if bits == 1 else 1,
             **({} if bits in (1, 8) else {"bits": bits}))
    got = read_image(tmp_path / "g.png")
    assert got.shape == (6, 9, 4)
    np.testing.assert_array_equal(got[..., :3], np.repeat(grey[..., None], 3, axis=-1))
    np.testing.assert_array_equal(got[..., 3], np.where(raw == 1, 0, 255))


def test_rgb_png_with_colour_key_gets_alpha(tmp_path, rng):
    rgb = rng.integers(0, 4, size=(7, 5, 3), dtype=np.uint8)  # the key occurs several times
    pil_save(tmp_path / "c.png", rgb, transparency=(1, 2, 3))
    got = read_image(tmp_path / "c.png")
    np.testing.assert_array_equal(got[..., :3], rgb)
    np.testing.assert_array_equal(got[..., 3], np.where((rgb == (1, 2, 3)).all(-1), 0, 255))


@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_png_with_colour_key_compares_all_16_bits(tmp_path, rng, channels):
    shape = (6, 8) if channels == 1 else (6, 8, 3)
    v = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    key = np.full(channels, 0x1234, dtype=np.uint16)
    v.reshape(6, 8, channels)[0, 0] = key
    v.reshape(6, 8, channels)[1, 1] = key + 1  # equal to the key in its high byte
    write_png16(tmp_path / "k16.png", v, key=key)
    got = read_image(tmp_path / "k16.png")
    assert got.shape == (6, 8, 4)
    colour = expected_8bit(v if channels == 3 else np.repeat(v[..., None], 3, axis=-1))
    np.testing.assert_array_equal(got[..., :3], colour)
    hit = (v.reshape(6, 8, channels) == key).all(-1)
    assert hit[0, 0] and not hit[1, 1]
    np.testing.assert_array_equal(got[..., 3], np.where(hit, 0, 255))


def test_gif_gives_its_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (40, 200)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    got = read_image(path)
    assert got.shape == (8, 8, 3)
    assert np.all(got == 40)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    im = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in CMYK
    got = read_image(pil_save(tmp_path / "cmyk.jpg", im, quality=95))
    assert got.shape == (8, 16, 3)
    assert got[..., 0].min() > 200 and got[..., 1:].max() < 60


# ------------------------------------------------------------------------ 16-bit input

def test_16bit_grey_png_is_rounded_not_truncated(tmp_path):
    # Values chosen where truncating (v >> 8) and rounding disagree.
    v = np.array([[0, 128, 200, 383, 384, 32767], [32768, 65000, 65407, 65408, 65534, 65535]],
                 dtype=np.uint16)
    write_png16(tmp_path / "g16.png", v)
    got = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(got, expected_8bit(v))
    assert np.any(got != (v >> 8)), "test values must tell rounding from truncation"


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_colour_png_is_rounded_for_every_filter(tmp_path, rng, channels):
    v = rng.integers(0, 65536, size=(10, 13, channels), dtype=np.uint16)
    write_png16(tmp_path / "c16.png", v)
    got = read_image(tmp_path / "c16.png")
    want = expected_8bit(v)
    if channels == 2:
        want = np.stack([want[..., 0]] * 3 + [want[..., 1]], axis=-1)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_16bit_grey_tiff_is_rounded(tmp_path, rng):
    v = rng.integers(0, 65536, size=(5, 7), dtype=np.uint16)
    path = tmp_path / "g16.tiff"
    Image.frombytes("I;16", (7, 5), v.astype("<u2").tobytes()).save(path)
    np.testing.assert_array_equal(read_image(path), expected_8bit(v))


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_tiff_is_rounded(tmp_path, rng, channels):
    v = rng.integers(0, 65536, size=(6, 9, channels), dtype=np.uint16)
    write_tiff16(tmp_path / "c16.tiff", v)
    with Image.open(tmp_path / "c16.tiff") as im:
        assert im.size == (9, 6)  # the hand-made file is a TIFF Pillow reads
    np.testing.assert_array_equal(read_image(tmp_path / "c16.tiff"), expected_8bit(v))


def test_reduce_16_to_8_matches_rounding_on_every_value():
    v = np.arange(65536, dtype=np.uint16)
    np.testing.assert_array_equal(images.reduce_16_to_8(v), expected_8bit(v))


# ------------------------------------------------------------------------ orientation

def _with_orientation(im: Image.Image, orientation: int) -> Image.Image.Exif:
    exif = im.getexif()
    exif[0x0112] = orientation
    return exif


def test_exif_orientation_is_applied_png(tmp_path, rng):
    a = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    path = pil_save(tmp_path / "o.png", im, exif=_with_orientation(im, 6))
    got = read_image(path)
    # Orientation 6: the stored picture must be turned 90 degrees clockwise for display.
    np.testing.assert_array_equal(got, np.rot90(a, k=-1))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_exif_transpose(tmp_path, rng, orientation):
    from PIL import ImageOps

    a = rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    path = pil_save(tmp_path / "o.png", im, exif=_with_orientation(im, orientation))
    with Image.open(path) as stored:
        want = np.asarray(ImageOps.exif_transpose(stored))
    np.testing.assert_array_equal(read_image(path), want)


def test_exif_orientation_is_applied_jpeg(tmp_path):
    a = np.zeros((32, 64, 3), np.uint8)
    a[:, :32] = (255, 0, 0)  # left half red, right half blue
    a[:, 32:] = (0, 0, 255)
    im = Image.fromarray(a)
    got = read_image(pil_save(tmp_path / "o.jpg", im, quality=95, exif=_with_orientation(im, 8)))
    # Orientation 8: turned 90 degrees counter-clockwise, so the left half ends at the bottom.
    assert got.shape == (64, 32, 3)
    assert got[48, 16, 0] > 200 and got[48, 16, 2] < 60
    assert got[16, 16, 2] > 200 and got[16, 16, 0] < 60


# ------------------------------------------------------------------------ bad files

def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"nothere\.png: no such file"):
        read_image(tmp_path / "nothere.png")


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture\n")
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image file"):
        read_image(tmp_path / "notes.jpg")


def test_folder(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        read_image(tmp_path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_truncated_jpeg_is_an_error_not_grey_padding(tmp_path, demo_photo, keep):
    data = demo_photo.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated"):
        read_image(path)


def test_truncated_jpeg_is_an_error_even_if_pillow_was_told_to_pad(tmp_path, demo_photo,
                                                                   monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = tmp_path / "cut.jpg"
    path.write_bytes(demo_photo.read_bytes()[:60000])
    with pytest.raises(ImageError, match="truncated"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True, "the caller's setting must be restored"


def test_truncated_header(tmp_path, demo_photo):
    path = tmp_path / "head.jpg"
    path.write_bytes(demo_photo.read_bytes()[:40])
    with pytest.raises(ImageError, match=r"head\.jpg: truncated"):
        read_image(path)


def test_unsupported_mode_names_the_mode(tmp_path):
    path = tmp_path / "float.tiff"
    Image.fromarray(np.zeros((3, 3), np.float32)).save(path)
    with pytest.raises(ImageError, match=r"float\.tiff: unsupported image mode 'F'"):
        read_image(path)


def test_pixel_limit_is_checked_from_the_header(tmp_path, monkeypatch, rng):
    path = pil_save(tmp_path / "big.png", rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8))
    monkeypatch.setattr(images, "MAX_PIXELS", 1999)
    with pytest.raises(ImageError, match=r"big\.png: too large \(50x40 = 2,000 pixels"):
        read_image(path)


def test_pillow_bomb_limit_is_not_in_the_way_and_is_restored(tmp_path, monkeypatch, rng):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse 600 px
    a = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(pil_save(tmp_path / "x.png", a)), a)
    assert Image.MAX_IMAGE_PIXELS == 100


def test_real_photo(demo_photo):
    got = read_image(demo_photo)
    assert got.shape == (400, 640, 3) and got.dtype == np.uint8
    assert got.std() > 10  # a photo, not a flat fill


def test_every_shared_photo_reads_upright_at_its_listed_size(photo_dir):
    sizes = {"path-640.jpg": (400, 640), "kite.jpg": (1600, 2560), "volna.jpg": (2880, 5120)}
    for name, (h, w) in sizes.items():
        assert read_image(photo_dir / name).shape == (h, w, 3), name


# ------------------------------------------------------------------------ writing

def _palette_image(rng, k: int, channels: int, shape=(9, 14)) -> PaletteImage:
    palette = rng.integers(0, 256, size=(k, channels), dtype=np.uint8)
    return PaletteImage(palette, rng.integers(0, k, size=shape, dtype=np.uint8))


@pytest.mark.parametrize("k", [1, 2, 5, 16, 17, 256])
def test_palette_png_round_trips_losslessly(tmp_path, rng, k):
    img = _palette_image(rng, k, 3)
    path = tmp_path / "q.png"
    n = write_png(path, img)
    assert n == path.stat().st_size
    with Image.open(path) as im:
        assert im.mode == "P"
    np.testing.assert_array_equal(read_image(path), img.palette[img.indices])


def test_small_palettes_are_packed_below_8_bits(rng):
    data = png_bytes(_palette_image(rng, 2, 3))
    bit_depth, colour_type = data[24], data[25]
    assert (bit_depth, colour_type) == (1, 3)


def test_rgba_palette_png_keeps_alpha(tmp_path, rng):
    img = _palette_image(rng, 6, 4)
    img.palette[0, 3] = 255
    img.palette[1, 3] = 0
    path = tmp_path / "qa.png"
    write_png(path, img)
    np.testing.assert_array_equal(read_image(path), img.palette[img.indices])


def test_opaque_rgba_palette_still_reads_back_with_four_channels(tmp_path, rng):
    img = _palette_image(rng, 3, 4)
    img.palette[:, 3] = 255
    write_png(tmp_path / "o.png", img)
    assert read_image(tmp_path / "o.png").shape == (9, 14, 4)


def test_grey_palette_is_written_as_greyscale(tmp_path, rng):
    img = _palette_image(rng, 7, 1)
    path = tmp_path / "g.png"
    write_png(path, img)
    got = read_image(path)
    assert got.shape == (9, 14)
    np.testing.assert_array_equal(got, img.to_image()[..., 0])


@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 1), (5, 6, 3), (5, 6, 4)])
def test_plain_arrays_round_trip(tmp_path, rng, shape):
    a = rng.integers(0, 256, size=shape, dtype=np.uint8)
    write_png(tmp_path / "a.png", a)
    want = a[..., 0] if shape[-1:] == (1,) else a
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), want)


def test_write_refuses_to_overwrite_and_leaves_no_temporary(tmp_path, rng):
    path = tmp_path / "x.png"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_png(path, _palette_image(rng, 3, 3), overwrite=False)
    assert path.read_bytes() == b"keep me"
    assert os.listdir(tmp_path) == ["x.png"]


def test_write_into_missing_folder(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_png(tmp_path / "no" / "x.png", _palette_image(rng, 3, 3))


def test_write_rejects_bad_arrays(rng):
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        png_bytes(np.zeros((3, 3, 2), np.uint8))
    bad = PaletteImage(np.zeros((2, 3), np.uint8), np.full((2, 2), 5, np.uint8))
    with pytest.raises(ValueError, match="out of range"):
        png_bytes(bad)


def test_png_bytes_is_a_png_pillow_reads(rng):
    img = _palette_image(rng, 9, 3)
    with Image.open(io.BytesIO(png_bytes(img))) as im:
        assert im.size == (14, 9) and im.format == "PNG"
