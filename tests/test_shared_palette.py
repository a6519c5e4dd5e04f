"""quantize_many: one palette for a set equals k-means on all the pixels together."""

import numpy as np
import pytest

import fastkm
from fastkm import kernels
from fastkm.quantize import color_histogram
from fastkm.shared_palette import merge_histograms


def crops(demo_photo):
    import imageio.v3 as iio
    img = iio.imread(demo_photo)
    return [np.ascontiguousarray(img[100:200, 200:360]), np.ascontiguousarray(img[0:80, 0:120]),
            np.ascontiguousarray(img[300:400, 500:640])]


def nearest(pixels, palette):
    d2 = ((pixels[:, None, :].astype(np.float64)
           - palette.astype(np.float64)[None]) ** 2).sum(-1)
    return d2.argmin(1)


@pytest.mark.parametrize("k", [4, 32])
def test_equals_kmeans_on_concatenated_pixels(demo_photo, k):
    images = crops(demo_photo)
    pixels = np.concatenate([i.reshape(-1, 3) for i in images]).astype(np.float64)
    start = pixels[np.random.default_rng(k).choice(len(pixels), k, replace=False)]
    qs = fastkm.quantize_many(images, k, init=start, tol=0)
    km = fastkm.KMeans(k, init=start, tol=0).fit(pixels)
    assert len(qs) == 3
    for q, img in zip(qs, images):
        np.testing.assert_allclose(q.centers, km.cluster_centers_, rtol=1e-12, atol=1e-10)
        assert q.n_iter == km.n_iter_
        np.testing.assert_array_equal(q.palette, qs[0].palette)
        assert q.indices.shape == img.shape[:2]
        # Every pixel is mapped to its nearest entry of the shared palette.
        np.testing.assert_array_equal(q.indices.ravel(), nearest(img.reshape(-1, 3), q.palette))
        ref = img.astype(np.float64)
        assert q.mse == pytest.approx(((q.to_image() - ref) ** 2).mean(), rel=1e-12)
        assert q.n_distinct == len(np.unique(img.reshape(-1, 3), axis=0))
    labels = np.empty(len(pixels), np.int32)
    kernels.assign(pixels, qs[0].centers, labels, np.empty(len(pixels)))
    np.testing.assert_array_equal(labels, km.labels_)


@pytest.mark.parametrize("channels", [1, 4])
def test_merge_counts_add(channels):
    rng = np.random.default_rng(channels)
    a = rng.integers(0, 4, size=(50, channels), dtype=np.uint8)
    b = rng.integers(2, 6, size=(70, channels), dtype=np.uint8)
    hists = [color_histogram(p)[:3] for p in (a, b)]
    colors, counts, _, rows = merge_histograms(hists)
    want, want_counts = np.unique(np.concatenate([a, b]), axis=0, return_counts=True)
    np.testing.assert_array_equal(colors, want)
    np.testing.assert_array_equal(counts, want_counts)
    for (own, _, _), row in zip(hists, rows):
        np.testing.assert_array_equal(colors[row], own)


def test_default_seeding_one_palette_and_quality(demo_photo):
    images = crops(demo_photo)
    qs = fastkm.quantize_many(images, 16, seed=0)
    whole = np.concatenate([i.reshape(-1, 3) for i in images])
    single = fastkm.quantize(whole.reshape(-1, 1, 3), 16, seed=0)
    # The same fitting path as quantize on the pixels together: the same palette.
    np.testing.assert_array_equal(qs[0].palette, single.palette)
    at = 0
    for q, img in zip(qs, images):
        n = img.shape[0] * img.shape[1]
        np.testing.assert_array_equal(q.indices.ravel(), single.indices.ravel()[at:at + n])
        at += n


def test_alpha_and_few_colours():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, size=(20, 30, 4), dtype=np.uint8) for _ in range(2)]
    qs = fastkm.quantize_many(images, 8, seed=0)
    for q, img in zip(qs, images):
        np.testing.assert_array_equal(q.indices.ravel(), nearest(img.reshape(-1, 4), q.palette))
    few = [np.full((3, 3, 3), 7, np.uint8), np.full((2, 5, 3), 9, np.uint8)]
    qs = fastkm.quantize_many(few, 4)
    for q, img in zip(qs, few):
        np.testing.assert_array_equal(q.to_image(), img)
        assert q.mse == 0


def test_errors():
    with pytest.raises(ValueError, match="images is empty"):
        fastkm.quantize_many([], 4)
    with pytest.raises(ValueError, match="same number of channels"):
        fastkm.quantize_many([np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8)], 4)
    with pytest.raises(ValueError, match="n_colors"):
        fastkm.quantize_many([np.zeros((2, 2, 3), np.uint8)], 0)
    with pytest.raises(ValueError, match="init must have shape"):
        fastkm.quantize_many([np.arange(48, dtype=np.uint8).reshape(4, 4, 3)], 4,
                             init=np.zeros((3, 3)))


def test_cli_shared_palette(tmp_path, demo_photo):
    from fastkm.cli.app import app
    from PIL import Image
    from typer.testing import CliRunner

    from fastkm.images import read_image

    images = crops(demo_photo)
    names = []
    for i, img in enumerate(images):
        names.append(tmp_path / f"in{i}.png")
        Image.fromarray(img).save(names[-1])
    (tmp_path / "bad.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(app, ["compress", *map(str, names), str(tmp_path / "bad.png"), "-k", "8",
                                      "--shared-palette", "--format", "png", "--out-dir",
                                      str(out), "--seed", "3", "-q"])
    assert result.exit_code == 1, result.output
    assert "bad.png" in result.output and "error:" in result.output
    want = fastkm.quantize_many(images, 8, seed=3)
    for i, q in enumerate(want):
        np.testing.assert_array_equal(read_image(out / f"in{i}.png"), q.to_image())
    assert not (out / "bad.png").exists()


def test_one_array_is_not_a_list_of_images():
    """A bare (H, W, 3) array iterates as H greyscale rows: refused, not H results."""
    img = np.zeros((20, 10, 3), np.uint8)
    with pytest.raises(TypeError, match="images must be a list of images"):
        fastkm.quantize_many(img, 4)
