"""Shared fixtures: the real photos, the demo photo, small images made on the fly."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_IMAGES = REPO.parent / "shared" / "images"
DEMO_PHOTO = REPO / "examples" / "path-640.jpg"


@pytest.fixture(scope="session")
def photo_dir() -> Path:
    """The folder of real test photos (../shared/images); skips when it is absent."""
    if not SHARED_IMAGES.is_dir():
        pytest.skip(f"real test photos not found: {SHARED_IMAGES} is absent")
    return SHARED_IMAGES


@pytest.fixture(scope="session")
def demo_photo() -> Path:
    """examples/path-640.jpg, the 640x400 photo shipped in the repository."""
    assert DEMO_PHOTO.is_file(), f"{DEMO_PHOTO} is missing from the repository"
    return DEMO_PHOTO


@pytest.fixture(scope="session")
def small_photo(tmp_path_factory, demo_photo) -> Path:
    """A 160x100 lossless crop of the demo photo: real texture, quick to quantize."""
    from PIL import Image

    path = tmp_path_factory.mktemp("photos") / "small.png"
    with Image.open(demo_photo) as im:
        im.crop((200, 150, 360, 250)).save(path)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@functools.lru_cache(maxsize=None)
def _quantized(path: Path, k: int):
    import fastkm
    from fastkm.images import read_image

    return fastkm.quantize(read_image(path), k, seed=0)


@pytest.fixture(scope="session")
def quantized():
    """``quantized(path, k)``: what the CLI should produce for a file (library defaults, the
    CLI's seed 0), computed once per session and shared by the CLI test modules."""
    return _quantized


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """Every kernel the CLI reaches, compiled (or loaded) before the first test, in one
    process per core (fastkm warmup's way): a cold CI run compiles them in parallel, and
    the CLI tests' stderr never carries the first-run notice. The cold paths themselves are
    tested in test_startup.py, on caches of their own."""
    from fastkm import warmup

    failed = warmup.warm(warmup.kernels_for(warmup.SCENARIOS))
    assert not failed, f"fastkm/compile_plan.py is stale (bench/compile_plan.py): {failed}"
