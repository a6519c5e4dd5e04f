"""The Pillow plugin: .fkm through Image.open / Image.save, and imageio through Pillow."""

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
