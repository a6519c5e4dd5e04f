"""Reading photos into uint8 arrays and writing PNGs, through imageio and Pillow.

What ``read_image`` returns, whatever the file holds:

- greyscale (and bilevel) images: (H, W) uint8;
- RGB, CMYK, YCbCr and palette images without transparency: (H, W, 3) uint8;
- RGBA, palette images with transparency, greyscale+alpha, and greyscale or RGB images with
  a colour key (a PNG tRNS chunk, 8 or 16 bits: alpha 0 where a pixel equals the key, else
  255): (H, W, 4) uint8 (grey+alpha becomes RGBA with R = G = B, because the quantizer
  clusters 1, 3 or 4 channels, not 2);
- 16-bit samples are reduced to 8 bits with rounding, ``(v * 255 + 32767) // 65535``,
  not by dropping the low byte as Pillow does on its own;
- the EXIF orientation is applied, so the array is upright as a viewer shows it;
- animated or multi-page files give their first frame.

Every failure is an ``ImageError`` whose message starts with the file name and says what
is wrong in one line.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from .fileio import atomic_write_bytes
from .palette import PaletteImage

#: Largest image read_image accepts. A gigapixel is already 3 GB of RGB before any work;
#: beyond it a header is more likely hostile (a decompression bomb) than a photo.
MAX_PIXELS = 1_000_000_000

# Pillow modes and what read_image turns them into (None: keep as is).
_MODE_TARGETS = {
    "L": None,
    "1": "L",
    "RGB": None,
    "RGBA": None,
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LA": "RGBA",
    "La": "RGBA",
    "PA": "RGBA",
    "RGBa": "RGBA",
}
_GREY16_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


class ImageError(ValueError):
    """An image file that cannot be read or written; the message names the file."""


def reduce_16_to_8(values: np.ndarray) -> np.ndarray:
    """Map 0..65535 to 0..255 by rounding to the nearest of the 256 levels."""
    v = values.astype(np.uint32)
    return ((v * 255 + 32767) // 65535).astype(np.uint8)


@contextlib.contextmanager
def _strict_pillow() -> Iterator[None]:
    """Pillow settings for one read: no silent truncation, our own size limit.

    ``LOAD_TRUNCATED_IMAGES`` would pad a cut-off JPEG with grey; we want an error instead.
    Pillow's decompression-bomb check warns at 89 MP and fails at 179 MP, below photos we
    accept, so it is switched off here and ``MAX_PIXELS`` is checked from the header instead.
    """
    from PIL import Image, ImageFile

    saved = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            # e.g. "Palette images with Transparency expressed in bytes should be converted
            # to RGBA images": we do exactly that.
            warnings.simplefilter("ignore")
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = saved


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    if not os.access(path, os.R_OK):
        raise ImageError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "truncated" in text.lower():
        return f"truncated or damaged image data ({text})"
    return f"cannot decode image data ({text})"


def _open(path: Path):
    """The file opened by Pillow: header read, pixels not decoded yet."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file, or a format Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise ImageError(f"{path}: {_describe(exc)}") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) as stored, from the header alone (no pixel is decoded); the pixel
    count of what ``read_image`` returns. Errors as ``read_image``'s."""
    path = Path(path)
    _check_readable(path)
    with _strict_pillow(), _open(path) as header:
        return header.size


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W), (H, W, 3) or (H, W, 4) uint8 (see the module doc)."""
    path = Path(path)
    _check_readable(path)
    with _strict_pillow():
        with _open(path) as header:
            width, height = header.size
            mode, fmt = header.mode, header.format
            info = dict(header.info)
            tile = list(getattr(header, "tile", None) or [])
            palette_mode = header.palette.mode if mode == "P" and header.palette else None
            orientation = _orientation(header)
            if width <= 0 or height <= 0:
                raise ImageError(f"{path}: image has no pixels ({width}x{height})")
            if width * height > MAX_PIXELS:
                raise ImageError(f"{path}: too large ({width}x{height} = {width * height:,} "
                                 f"pixels; the limit is {MAX_PIXELS:,})")
            key = info.get("transparency") if mode != "P" else None
            try:
                if mode in ("RGB", "RGBA") and _is_16bit(tile):
                    array = _read_16bit_colour(path, key if mode == "RGB" else None)
                else:
                    target = _target_mode(path, mode, fmt, info, palette_mode)
                    if target == "I;16":
                        array = _read_with_imageio(path, target, key)
                    else:
                        if mode == "L" and isinstance(key, int) and tile:
                            header.info["transparency"] = _grey_key(key, _rawmode(tile[0]))
                        # 8-bit samples: decoded from the file already open, as imageio's
                        # Pillow plugin would after opening it again (a 0.2 MP PNG: 12 ->
                        # 6 ms). A copy: Pillow's array is read-only, and the kernels are
                        # compiled for writable arrays.
                        array = np.array(header if target == mode else header.convert(target))
                return np.ascontiguousarray(_orient(array, orientation))
            except ImageError:
                raise
            except MemoryError:
                raise ImageError(f"{path}: not enough memory to decode {width}x{height}") from None
            except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, zlib.error...
                raise ImageError(f"{path}: {_describe(exc)}") from None


def _target_mode(path: Path, mode: str, fmt: str | None, info: dict,
                 palette_mode: str | None) -> str | None:
    """The Pillow mode to decode into, or "I;16" for 16-bit greyscale."""
    if mode == "P":
        has_alpha = "transparency" in info or (palette_mode or "").endswith("A")
        return "RGBA" if has_alpha else "RGB"
    if mode in ("1", "L", "RGB") and "transparency" in info:
        return "RGBA"  # a colour key (PNG tRNS): Pillow's convert makes it alpha
    if mode in _GREY16_MODES or (mode == "I" and fmt == "PNG"):
        return "I;16"
    if mode in _MODE_TARGETS:
        return _MODE_TARGETS[mode] or mode
    raise ImageError(f"{path}: unsupported image mode {mode!r} "
                     "(expected greyscale, RGB, RGBA, palette or 16-bit greyscale)")


def _read_with_imageio(path: Path, target: str | None, key=None) -> np.ndarray:
    """Decode the first frame, converted to Pillow mode ``target`` (None: as stored);
    ``key``: a 16-bit grey colour key (PNG tRNS), made alpha."""
    import imageio.v3 as iio

    with iio.imopen(path, "r", plugin="pillow") as file:
        # imageio converts "I;16" itself (PNG "I" included). Orientation is applied by the
        # caller: imageio's rotate=True re-reads the metadata and costs a third of a decode.
        mode = None if target == "I;16" else target
        array = file.read(index=0, mode=mode, rotate=False)
    if array.dtype == np.uint16 or target == "I;16":
        if isinstance(key, int) and array.ndim == 2:
            return _keyed(array, key)
        array = reduce_16_to_8(array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise ImageError(f"{path}: unsupported sample type {array.dtype}")
    return array


def _orientation(header) -> int:
    try:
        value = header.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block is no reason to refuse the picture
        return 1
    return value if value in _ORIENT else 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored picture upright, as the EXIF Orientation tag asks (views, no copy)."""
    return _ORIENT[orientation](array)


_EXIF_ORIENTATION = 0x0112
# Tag value -> the transform that makes the picture upright (TIFF/EXIF 2.3, tag 274).
_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],                    # mirrored left-right
    3: lambda a: a[::-1, ::-1],                 # rotated 180
    4: lambda a: a[::-1],                       # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),              # transposed
    6: lambda a: np.rot90(a, -1),               # needs 90 degrees clockwise
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],  # transversed
    8: lambda a: np.rot90(a, 1),                # needs 90 degrees counter-clockwise
}


def _is_16bit(tile: list) -> bool:
    return bool(tile) and all(isinstance(_rawmode(t), str) and ";16" in _rawmode(t)
                              for t in tile)


def _grey_key(key: int, rawmode: str) -> int:
    """A 1, 2 or 4-bit grey PNG's colour key on the 0..255 scale of its decoded pixels
    (Pillow scales the pixels but not the key, so such keys would never match)."""
    bits = {"L;1": 1, "L;2": 2, "L;4": 4}.get(rawmode.rstrip("I"), 8)
    return key * 255 // ((1 << bits) - 1) if bits < 8 else key


def _keyed(full: np.ndarray, key) -> np.ndarray:
    """RGBA from 16-bit grey (H, W) or RGB (H, W, 3) with a colour key: alpha 0 where the
    16-bit samples equal ``key`` (compared before the reduction to 8 bits), else 255."""
    grey = full.ndim == 2
    key = np.asarray(key, dtype=np.uint32).reshape(-1)
    if len(key) != (1 if grey else 3):
        return reduce_16_to_8(full)  # a malformed key: Pillow ignores it too
    samples = full[..., None] if grey else full
    alpha = np.where(np.all(samples == key, axis=-1), 0, 255).astype(np.uint8)
    colour = reduce_16_to_8(samples)
    if grey:
        colour = np.repeat(colour, 3, axis=-1)
    return np.ascontiguousarray(np.concatenate([colour, alpha[..., None]], axis=-1))


def _read_16bit_colour(path: Path, key=None) -> np.ndarray:
    """Decode 16-bit RGB(A) / grey+alpha with rounding instead of Pillow's truncation.

    Pillow has no 16-bit colour modes: it unpacks each 16-bit sample to its high byte. The
    file is therefore decoded twice with the same filtering (same bits per pixel) but
    unpackers that pick the high and then the low byte of every sample. Pillow opens 16-bit
    grey+alpha as RGBA; it is unpacked once as 8-bit RGBA, which lays out (L hi, L lo, A hi,
    A lo).
    """
    from PIL import Image

    def decode(swap: dict[str, str]) -> np.ndarray:
        with Image.open(path) as im:
            tiles = []
            for t in im.tile:
                args = t.args
                if isinstance(args, tuple):
                    args = (_swap(args[0], swap),) + args[1:]
                else:
                    args = _swap(args, swap)
                tiles.append(t._replace(args=args))
            im.tile = tiles
            im.load()
            return np.asarray(im)

    with Image.open(path) as im:
        grey_alpha = all(_rawmode(t) == "LA;16B" for t in im.tile)
    if grey_alpha:
        planes = decode({"LA;16B": "RGBA"}).astype(np.uint16)
        grey = reduce_16_to_8(planes[..., 0] * 256 + planes[..., 1])
        alpha = reduce_16_to_8(planes[..., 2] * 256 + planes[..., 3])
        return np.ascontiguousarray(np.stack([grey, grey, grey, alpha], axis=-1))
    high = decode({})
    low = decode({";16B": ";16L", ";16L": ";16B"})
    full = high.astype(np.uint32) * 256 + low
    return _keyed(full, key) if key is not None else reduce_16_to_8(full)


def _swap(rawmode: str, swap: dict[str, str]) -> str:
    for old, new in swap.items():
        if rawmode.endswith(old):
            return rawmode[: -len(old)] + new
    return rawmode


def _rawmode(tile) -> str:
    args = tile.args if hasattr(tile, "args") else tile[3]
    return args[0] if isinstance(args, tuple) else args


# --------------------------------------------------------------------------- writing

def png_bytes(image: PaletteImage | np.ndarray, *, optimize: bool = False) -> bytes:
    """Encode as PNG: a palette PNG for a PaletteImage, else greyscale / RGB / RGBA.

    Palette images go through ``fastkm.png.palette_png``: palette re-indexed for deflate,
    1/2/4-bit pixels for K <= 16, alpha in a tRNS chunk, deflated on threads. A greyscale
    palette image is written as 8-bit greyscale, because a PNG palette is always RGB and
    would read back as three channels. ``optimize`` spends more time for smaller files.
    """
    if isinstance(image, PaletteImage):
        from .png import palette_png

        return palette_png(image.palette, image.indices, optimize=optimize)  # checks them
    import imageio.v3 as iio

    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"image must be (H, W) or (H, W, 1|3|4), got shape {array.shape}")
    return iio.imwrite("<bytes>", array, extension=".png", plugin="pillow")


def write_png(path: str | os.PathLike, image: PaletteImage | np.ndarray, *,
              overwrite: bool = True, optimize: bool = False) -> int:
    """Write ``image`` as PNG (see ``png_bytes``) atomically; return the bytes written."""
    data = png_bytes(image, optimize=optimize)
    # A failed write is fastkm.fileio's OutputWriteError, naming ``path`` and the reason.
    atomic_write_bytes(path, data, overwrite=overwrite)
    return len(data)
