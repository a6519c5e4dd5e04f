"""The Pillow plugin: .fkm through Image.open / Image.save, and imageio through Pillow."""

import io
import re

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import fastkm
from fastkm.codec import encode


def _image(c, k=7, shape=(13, 21), seed=0):
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (k, c), dtype=np.uint8)
    if c == 1:
        palette = np.unique(palette)[:, None].astype(np.uint8)  # distinct grey levels
    indices = rng.integers(0, len(palette), shape, dtype=np.uint8)
    return fastkm.PaletteImage(palette, indices)


def _pixels(img):
    return img.palette[img.indices, 0] if img.channels == 1 else img.palette[img.indices]


@pytest.mark.parametrize("c, mode, convert", [(1, "L", "L"), (3, "P", "RGB"), (4, "P", "RGBA")])
def test_open_matches_fastkm_load(tmp_path, c, mode, convert):
    img = _image(c)
    path = tmp_path / "x.fkm"
    fastkm.save(path, img)
    with Image.open(path) as im:
        assert (im.format, im.mode, im.size) == ("FKM", mode, (21, 13))
        assert im._im is None  # header only: nothing decoded yet
        loaded = np.asarray(im.convert(convert))
        if mode == "P":
            assert np.array_equal(np.asarray(im), img.indices)
    assert np.array_equal(loaded, _pixels(fastkm.load(path)))


@pytest.mark.parametrize("c", [1, 3, 4])
def test_save_p_and_l_round_trip(tmp_path, c):
    img = _image(c)
    src = tmp_path / "a.fkm"
    fastkm.save(src, img)
    with Image.open(src) as im:
        im.save(tmp_path / "b.fkm")
    back = fastkm.load(tmp_path / "b.fkm")
    assert np.array_equal(_pixels(back), _pixels(img))


def test_save_rgb_quantizes_with_colors(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "q.fkm", colors=5)
    back = fastkm.load(tmp_path / "q.fkm")
    assert back.palette.shape == (5, 3) and back.indices.shape == (16, 16)
    few = rgb[:, :, :] // 128 * 255  # 8 colours: lossless at colors >= 8
    Image.fromarray(few.astype(np.uint8)).save(tmp_path / "f.fkm", colors=8)
    assert np.array_equal(fastkm.load(tmp_path / "f.fkm").to_image(), few)


def test_save_p_with_transparency(tmp_path):
    im = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "P")
    im.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90])
    im.info["transparency"] = 1
    im.save(tmp_path / "t.fkm")
    back = fastkm.load(tmp_path / "t.fkm")
    assert back.palette.tolist() == [[10, 20, 30, 255], [40, 50, 60, 0], [70, 80, 90, 255]]


def test_damaged_header_is_unidentified(tmp_path):
    data = bytearray(encode(_image(3)))
    data[10] ^= 1
    (tmp_path / "h.fkm").write_bytes(bytes(data))
    with pytest.raises(UnidentifiedImageError, match="header CRC mismatch"):
        Image.open(tmp_path / "h.fkm")


def test_damaged_strip_is_oserror_at_load(tmp_path):
    data = bytearray(encode(_image(3)))
    data[-10] ^= 0xFF  # inside the last coded strip, before the 8-byte end marker
    (tmp_path / "s.fkm").write_bytes(bytes(data))
    with Image.open(tmp_path / "s.fkm") as im, pytest.raises(OSError, match="CRC mismatch in strip 0"):
        im.load()


@pytest.mark.parametrize("c", [1, 3, 4])
def test_imageio_reads_and_writes(tmp_path, c):
    iio = pytest.importorskip("imageio.v3")
    img = _image(c)
    path = tmp_path / "x.fkm"
    fastkm.save(path, img)
    assert np.array_equal(iio.imread(path), _pixels(img))
    iio.imwrite(tmp_path / "y.fkm", _pixels(img))
    assert np.array_equal(_pixels(fastkm.load(tmp_path / "y.fkm")), _pixels(img))


def _saved(im, **options):
    buf = io.BytesIO()
    im.save(buf, "FKM", **options)
    back = Image.open(io.BytesIO(buf.getvalue()))
    back.load()
    return back


V16 = np.array([[0, 1000, 30000, 65535]], np.uint16)
V16_AS_8 = [0, 4, 117, 255]  # (v * 255 + 32767) // 65535, as fastkm.images reads 16-bit files


@pytest.mark.parametrize("mode", ["I;16", "I;16L", "I;16B", "I"])
def test_save_16_bit_grey_is_rounded_to_8_bits(mode):
    if mode == "I":
        im = Image.fromarray(V16.astype(np.int32))
    else:
        dtype = ">u2" if mode == "I;16B" else "<u2"
        im = Image.frombytes(mode, (4, 1), V16.astype(dtype).tobytes())
    assert im.mode == mode
    back = _saved(im)
    assert back.mode == "L" and np.asarray(back).tolist() == [V16_AS_8]


@pytest.mark.parametrize("array, message", [
    (np.array([[0.0, 0.25, 1.0]], np.float32), "mode F (floating-point) image"),
    (np.array([[-1, 0, 70000]], np.int32), "mode I image with values -1..70000"),
])
def test_save_refuses_float_and_wide_integer_images(tmp_path, array, message):
    im = Image.fromarray(array)
    with pytest.raises(ValueError, match=re.escape(message) + ".*convert it to 8 bits first"):
        im.save(tmp_path / "x.fkm")
    assert list(tmp_path.iterdir()) == []  # Pillow removes the file it created


@pytest.mark.parametrize("colors, error, message", [
    (2.5, TypeError, "colors must be an integer, got 2.5"),
    (True, TypeError, "colors must be an integer, got True"),
    ("8", TypeError, "colors must be an integer, got '8'"),
    (0, ValueError, "colors = 0, must be in 1..256"),
    (257, ValueError, "colors = 257, must be in 1..256"),
])
def test_save_checks_the_colors_option(colors, error, message):
    rgb = Image.fromarray(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(error, match=re.escape(message)):
        _saved(rgb, colors=colors)


def test_save_short_palette_pads_with_opaque_black():
    im = Image.fromarray(np.arange(6, dtype=np.uint8).reshape(2, 3), "P")
    im.putpalette([255, 0, 0, 10, 0, 255, 0, 20], "RGBA")
    back = _saved(im)
    assert np.array_equal(np.asarray(back.convert("RGBA")), np.asarray(im.convert("RGBA")))
    assert np.asarray(back.convert("RGBA"))[1, 2].tolist() == [0, 0, 0, 255]
    # A tRNS index past a short RGB palette is transparent, as Pillow shows it.
    im = Image.fromarray(np.arange(6, dtype=np.uint8).reshape(2, 3), "P")
    im.putpalette([255, 0, 0, 0, 255, 0])
    im.info["transparency"] = 4
    back = _saved(im)
    assert np.array_equal(np.asarray(back.convert("RGBA")), np.asarray(im.convert("RGBA")))
    assert np.asarray(back.convert("RGBA"))[:, :, 3].tolist() == [[255, 255, 255], [255, 0, 255]]


@pytest.mark.parametrize("mode, key", [("L", 50), ("1", 255)])
def test_save_grey_colour_key_becomes_alpha(mode, key):
    im = Image.fromarray(np.array([[0, 50, 100, 255]], np.uint8)).convert(mode)
    im.info["transparency"] = key
    back = _saved(im)
    assert back.mode == "P" and back.palette.mode == "RGBA"
    assert np.array_equal(np.asarray(back.convert("RGBA")), np.asarray(im.convert("RGBA")))
    assert 0 in np.asarray(back.convert("RGBA"))[:, :, 3]


def test_save_grey_colour_key_when_quantized():
    grey = np.arange(40, dtype=np.uint8).reshape(5, 8) * 6
    im = Image.fromarray(grey)
    im.info["transparency"] = 60
    back = np.asarray(_saved(im, colors=8).convert("RGBA"))
    assert (back[:, :, 3] == 0).tolist() == (grey == 60).tolist()


def test_save_16_bit_key_is_compared_before_rounding():
    v = np.array([[0, 1000, 1001, 65535]], np.uint16)  # 1000 and 1001 both round to 4
    im = Image.fromarray(v)
    im.info["transparency"] = 1000
    back = np.asarray(_saved(im).convert("RGBA"))
    assert back[0].tolist() == [[0, 0, 0, 255], [4, 4, 4, 0], [4, 4, 4, 255], [255, 255, 255, 255]]


def test_verify_passes_a_good_file_and_closes_it(tmp_path):
    fastkm.save(tmp_path / "g.fkm", _image(3))
    im = Image.open(tmp_path / "g.fkm")
    fp = im.fp
    im.verify()
    assert fp.closed and im.fp is None


def test_verify_catches_a_file_cut_mid_strip(tmp_path):
    data = encode(_image(3, shape=(60, 50)))
    (tmp_path / "c.fkm").write_bytes(data[:len(data) - 20])
    message = "truncated .fkm file: truncated at byte"
    with Image.open(tmp_path / "c.fkm") as im, pytest.raises(OSError, match=message):
        im.verify()


def test_verify_catches_a_damaged_strip(tmp_path):
    data = bytearray(encode(_image(3)))
    data[-10] ^= 0xFF
    (tmp_path / "s.fkm").write_bytes(bytes(data))
    message = "broken .fkm file: CRC mismatch in strip 0"
    with Image.open(tmp_path / "s.fkm") as im, pytest.raises(SyntaxError, match=message):
        im.verify()


def test_imageio_writes_bytes_with_the_pillow_plugin_named():
    iio = pytest.importorskip("imageio.v3")
    img = _image(3)
    data = iio.imwrite("<bytes>", _pixels(img), extension=".fkm", plugin="pillow")
    assert np.array_equal(fastkm.decode(data).to_image(), _pixels(img))
