"""spec/conformance/: every valid file decodes to its expected output, every invalid one
fails the check it names."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastkm.codec import FkmError, decode

HERE = Path(__file__).resolve().parents[1] / "spec" / "conformance"
MANIFEST = json.loads((HERE / "manifest.json").read_text())


@pytest.mark.parametrize("name", sorted(MANIFEST["valid"]))
def test_valid_file_decodes_to_expected(name):
    entry = MANIFEST["valid"][name]
    img = decode((HERE / entry["file"]).read_bytes())
    assert img.indices.shape == (entry["height"], entry["width"])
    assert img.palette.shape == (entry["K"], entry["channels"])
    digest = hashlib.sha256(img.palette.tobytes() + img.indices.tobytes()).hexdigest()
    assert digest == entry["sha256_palette_indices"]
    with Image.open(HERE / entry["png"]) as im:
        expected = np.asarray(im)
    got = img.palette[img.indices]
    assert np.array_equal(got[:, :, 0] if entry["channels"] == 1 else got, expected)


@pytest.mark.parametrize("name", sorted(MANIFEST["invalid"]))
def test_invalid_file_fails_its_check(name):
    entry = MANIFEST["invalid"][name]
    with pytest.raises(FkmError) as info:
        decode((HERE / entry["file"]).read_bytes())
    assert entry["must_fail"] in str(info.value)


def test_manifest_covers_the_issue_list():
    valid = MANIFEST["valid"].values()
    assert {1, 2, 16, 256} <= {e["K"] for e in valid}
    assert {1, 3, 4} <= {e["channels"] for e in valid}
    assert {True, False} <= {e["permuted"] for e in valid}
    assert any(e["strips"] > 1 for e in valid)
    shapes = {(e["width"], e["height"]) for e in valid}
    assert (1, 1) in shapes and any(w == 1 < h for w, h in shapes)
    assert any(h == 1 < w for w, h in shapes)


def test_generator_reproduces_the_files():
    make = pytest.importorskip("spec.conformance.make", reason="spec/ not importable")
    for name, data in make.build().items():
        assert (HERE / name).read_bytes() == data, name
