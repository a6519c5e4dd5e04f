"""Build the .fkm conformance files of this folder, deterministically.

    python spec/conformance/make.py          # rewrite the files and manifest.json
    python spec/conformance/make.py --check  # exit 1 if the files on disk differ

Valid files come with ``<name>.png`` (the decoded picture: grey, RGB or RGBA) and, in
manifest.json, the SHA-256 of the decoded palette bytes followed by the index bytes (row by
row). Invalid files name, in manifest.json, the check they must fail: the start of the
message fastkm's decoder gives (SPEC.md, "Limits" and "Decoding, step by step").
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from fastkm.codec import FkmError, decode, encode
from fastkm.codec.container import HEADER, HEADER_SIZE
from fastkm.palette import PaletteImage


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _blocky(h: int, w: int, k: int, seed: int, noise: float = 0.1) -> np.ndarray:
    """Indices with regions and runs (like a quantized photo) plus some noise."""
    rng = _rng(seed)
    coarse = rng.integers(0, k, (-(-h // 4), -(-w // 4)))
    plane = np.kron(coarse, np.ones((4, 4), np.int64))[:h, :w]
    flip = rng.random((h, w)) < noise
    plane[flip] = rng.integers(0, k, int(flip.sum()))
    return plane.astype(np.uint8)


def _palette(k: int, c: int, seed: int) -> np.ndarray:
    rng = _rng(seed)
    if c == 1:
        return np.sort(rng.choice(256, k, replace=False)).astype(np.uint8)[:, None]
    return rng.integers(0, 256, (k, c), dtype=np.uint8)


def valid_cases() -> dict[str, tuple[PaletteImage, dict]]:
    """name -> (image, encode options)."""
    cases = {
        "k1_rgb_7x5": (PaletteImage(_palette(1, 3, 1), np.zeros((5, 7), np.uint8)), {}),
        "k2_rgb_16x9": (PaletteImage(_palette(2, 3, 2), _blocky(9, 16, 2, 2)), {}),
        "k3_rgb_23x11": (PaletteImage(_palette(3, 3, 3), _blocky(11, 23, 3, 3)), {}),
        "k16_rgb_40x30": (PaletteImage(_palette(16, 3, 4), _blocky(30, 40, 16, 4)), {}),
        "k256_rgb_64x48": (PaletteImage(_palette(256, 3, 5), _blocky(48, 64, 256, 5, 0.3)), {}),
        "grey_k8_20x20": (PaletteImage(_palette(8, 1, 6), _blocky(20, 20, 8, 6)), {}),
        "rgba_k5_17x13": (PaletteImage(_palette(5, 4, 7), _blocky(13, 17, 5, 7)), {}),
        "strips_k16_31x33_r4": (PaletteImage(_palette(16, 3, 8), _blocky(33, 31, 16, 8)),
                                {"strip_height": 4}),
        "strips_k5_9x10_r1": (PaletteImage(_palette(5, 3, 9), _blocky(10, 9, 5, 9)),
                              {"strip_height": 1}),
        "size_1x1_k3": (PaletteImage(_palette(3, 3, 10), np.array([[2]], np.uint8)), {}),
        "size_1x50_k4": (PaletteImage(_palette(4, 3, 11), _blocky(50, 1, 4, 11)), {}),
        "size_50x1_k4": (PaletteImage(_palette(4, 3, 12), _blocky(1, 50, 4, 12)), {}),
        "noperm_k16_24x24": (PaletteImage(_palette(16, 3, 13), _blocky(24, 24, 16, 13)),
                             {"reorder": False}),
        "perm_k16_24x24": (PaletteImage(_palette(16, 3, 13), _blocky(24, 24, 16, 13)), {}),
        "runs_k2_4096x8": (PaletteImage(_palette(2, 3, 14), np.ones((8, 4096), np.uint8)), {}),
    }
    # The longest runs a strip can have: one index everywhere in a 2^18-pixel strip.
    cases["runs_k256_512x512_one_index"] = (
        PaletteImage(_palette(256, 3, 15), np.full((512, 512), 200, np.uint8)), {})
    return cases


def _with_header(data: bytes, **fields) -> bytes:
    """Edit header fields and recompute the header CRC, so the edit reaches later checks."""
    names = ["magic", "version", "channels", "coder", "flags", "width", "height",
             "strip_height", "k", "n_strips"]
    values = dict(zip(names, HEADER.unpack_from(data, 0)))
    values.update(fields)
    head = HEADER.pack(*(values[n] for n in names))
    return head + struct.pack("<I", zlib.crc32(head)) + data[HEADER_SIZE:]


def _table_span(data: bytes) -> tuple[int, int]:
    """(start, end) of the palette/permutation/strip table, before its CRC."""
    (_, _, c, _, flags, _, _, _, k, ns) = HEADER.unpack_from(data, 0)
    end = HEADER_SIZE + k * c + (k if flags & 1 else 0) + 8 * ns
    return HEADER_SIZE, end


def _with_table(data: bytes, edit) -> bytes:
    """Apply ``edit(bytearray of the table)`` and recompute the table CRC."""
    a, b = _table_span(data)
    table = bytearray(data[a:b])
    edit(table)
    return data[:a] + bytes(table) + struct.pack("<I", zlib.crc32(bytes(table))) + data[b + 4:]


def _strip_garbage(base: bytes, seed: int, want: str) -> bytes:
    """Replace strip 0 with random bytes (CRC recomputed) until decoding fails with ``want``."""
    ns = HEADER.unpack_from(base, 0)[9]
    _, b = _table_span(base)
    length = struct.unpack_from("<I", base, b - 8 * ns)[0]
    start = b + 4
    rng = _rng(seed)
    for _ in range(10000):
        junk = rng.integers(0, 256, length, dtype=np.uint8).tobytes()

        def edit(t, junk=junk):
            struct.pack_into("<I", t, len(t) - 8 * ns + 4, zlib.crc32(junk))
        data = _with_table(base[:start] + junk + base[start + length:], edit)
        try:
            decode(data)
        except FkmError as exc:
            if str(exc).startswith(want) or want in str(exc):
                return data
    raise RuntimeError(f"no garbage strip fails with {want!r}")


def invalid_cases() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, the check it must fail: a substring of fastkm's message)."""
    img = PaletteImage(_palette(3, 3, 20), _blocky(6, 10, 3, 20))
    base = encode(img)  # K = 3, permuted
    plain = encode(img, reorder=False)
    cases = {
        "bad_magic": (b"FKM\x1b" + base[4:], "bad magic"),
        "empty": (b"", "truncated at byte 0"),
        "unknown_version": (base[:4] + b"\x02" + base[5:], "unknown version 2"),
        "header_truncated": (base[:20], "truncated at byte 20: the header"),
        "header_crc": (base[:10] + bytes([base[10] ^ 1]) + base[11:], "header CRC mismatch"),
        "channels_2": (_with_header(base, channels=2), "channels = 2"),
        "unknown_coder": (_with_header(base, coder=2), "unknown coder id 2"),
        "unknown_flags": (_with_header(base, flags=3), "unknown flags 0x03"),
        "width_0": (_with_header(base, width=0), "width and height must be >= 1"),
        "too_many_pixels": (_with_header(base, width=40000, height=20000, strip_height=20000,
                                         n_strips=1), "over the limit of 400000000"),
        "k_0": (_with_header(base, k=0), "palette size K = 0"),
        "strip_height_over_h": (_with_header(base, strip_height=7), "strip height 7 must be"),
        "strip_count": (_with_header(base, n_strips=2), "strip count 2 does not match"),
        "table_truncated": (base[:40], "the palette and strip table"),
        "table_crc": (base[:30] + bytes([base[30] ^ 0x40]) + base[31:],
                      "palette/strip table CRC mismatch"),
        "not_a_permutation": (_with_table(base, lambda t: t.__setitem__(slice(9, 12),
                                                                        b"\x00\x00\x01")),
                              "palette permutation is not a permutation"),
        "strip_length_0": (_with_table(plain, lambda t: struct.pack_into("<I", t, 9, 0)),
                           "coded length 0"),
        "strip_truncated": (base[:-9], "truncated at byte"),
        "bad_end_marker": (base[:-1] + b"\x02", "bad end marker"),
        "trailing_bytes": (base + b"\x00", "1 unexpected bytes after the end marker"),
        "strip_crc": (base[:-9] + bytes([base[-9] ^ 1]) + base[-8:], "CRC mismatch in strip 0"),
        "decoded_index_ge_k": (_strip_garbage(base, 21, "decoded index >= K"),
                               "decoded index >= K = 3"),
        "length_mismatch": (_strip_garbage(base, 22, "length mismatch"), "length mismatch"),
    }
    huge = _with_header(plain, width=4000, height=4000, strip_height=4000, n_strips=1)
    cases["pixels_per_byte"] = (huge, "cannot fit in")
    return cases


def digest(img: PaletteImage) -> str:
    return hashlib.sha256(np.ascontiguousarray(img.palette).tobytes()
                          + np.ascontiguousarray(img.indices).tobytes()).hexdigest()


def picture_png(img: PaletteImage) -> bytes:
    """The decoded picture as a truecolour (or grey) PNG: the expected pixels."""
    from PIL import Image

    pixels = img.palette[img.indices]
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[img.channels]
    buf = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if img.channels == 1 else pixels, mode).save(
        buf, "PNG", optimize=True)
    return buf.getvalue()


def build() -> dict[str, bytes]:
    """Every file of the folder, name -> bytes (manifest.json included)."""
    files: dict[str, bytes] = {}
    manifest: dict = {"valid": {}, "invalid": {}}
    for name, (img, options) in valid_cases().items():
        data = encode(img, **options)
        back = decode(data)
        assert np.array_equal(back.indices, img.indices)
        h, w = img.indices.shape
        files[f"valid/{name}.fkm"] = data
        files[f"valid/{name}.png"] = picture_png(img)
        manifest["valid"][name] = {
            "file": f"valid/{name}.fkm", "png": f"valid/{name}.png", "width": w, "height": h,
            "channels": img.channels, "K": img.n_colors, "permuted": bool(data[7] & 1),
            "strips": struct.unpack_from("<H", data, 22)[0],
            "sha256_palette_indices": digest(img)}
    for name, (data, check) in invalid_cases().items():
        try:
            decode(data)
        except FkmError as exc:
            assert check in str(exc), (name, check, str(exc))
        else:
            raise AssertionError(f"{name} decodes")
        files[f"invalid/{name}.fkm"] = data
        manifest["invalid"][name] = {"file": f"invalid/{name}.fkm", "must_fail": check}
    files["manifest.json"] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return files


def main() -> int:
    files = build()
    if "--check" in sys.argv:
        bad = [n for n, b in files.items()
               if not (HERE / n).exists() or (HERE / n).read_bytes() != b]
        print("\n".join(bad) or "conformance files up to date")
        return 1 if bad else 0
    for name, data in files.items():
        (HERE / name).parent.mkdir(parents=True, exist_ok=True)
        (HERE / name).write_bytes(data)
    print(f"wrote {len(files)} files, {sum(map(len, files.values()))} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
