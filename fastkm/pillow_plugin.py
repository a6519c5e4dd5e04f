"""A Pillow plugin for .fkm files: ``Image.open``, ``Image.save`` and, through Pillow, imageio.

``import fastkm`` calls ``register()``. What Pillow sees:

- RGB and RGBA palettes open as mode ``P`` (an RGBA palette is a Pillow ``"RGBA"`` palette,
  so ``convert("RGBA")`` keeps the alpha); greyscale files open as mode ``L`` (the grey
  levels, not the indices).
- ``Image.open`` reads only the header and the palette; the strips are decoded on
  ``load()``.
- A file that is not a .fkm, or whose header or palette is damaged, fails at open
  (``UnidentifiedImageError``); a damaged strip fails at ``load()`` with an ``OSError``
  carrying fastkm's message. ``verify()`` checks the whole file without decoding it
  (``OSError`` if cut short, ``SyntaxError`` if damaged).
- ``save``: ``P`` and ``L`` images are encoded as they are (the palette cut to the indices
  used; ``L`` keeps its distinct grey levels, lossless up to ``colors`` of them, else
  quantized); 16-bit grey (``I;16*``, and ``I`` within 0..65535) is first rounded to 8 bits
  as ``fastkm.images`` reads such files; other ``I`` and ``F`` images are refused. A grey
  colour key (``info["transparency"]``) becomes an RGBA palette. Any other mode is quantized
  by fastkm first, to ``colors`` entries (save option, 256 by default).
- imageio finds the format from a file name (``iio.imwrite("x.fkm", a)``); writing to
  bytes needs ``iio.imwrite("<bytes>", a, extension=".fkm", plugin="pillow")``, since
  imageio does not know the extension on its own.

This module imports only Pillow; fastkm's codec is imported when a file is opened or saved.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFile, ImagePalette, UnidentifiedImageError

FORMAT = "FKM"
MIME = "image/x-fkm"
MAGIC = b"FKM\x1a"
_registered = False


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == MAGIC


class FkmImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "fastkm palette image"

    def _open(self) -> None:
        from .codec.container import HEADER_SIZE, head_size, parse_head

        fixed = self.fp.read(HEADER_SIZE)
        if fixed[:4] != MAGIC:
            raise SyntaxError("not a .fkm file")
        if len(fixed) == HEADER_SIZE:
            fixed += self.fp.read(head_size(fixed) - HEADER_SIZE)
        try:
            # Pillow's own decompression-bomb check applies to the size; no limit here.
            w, h, c, k, *_, palette, _perm, _end = parse_head(fixed, max_pixels=2**62)
        except ValueError as exc:
            # Raised as is, Image.open closes the file and passes it on with fastkm's
            # message (a SyntaxError would be swallowed into a message-less one).
            name = getattr(self, "filename", "") or "<stream>"
            raise UnidentifiedImageError(f"cannot identify image file {str(name)!r}: "
                                         f"damaged .fkm header: {exc}") from None
        self._size = (w, h)
        self.info["fkm_colors"] = k
        if c == 1:
            self._mode = "L"
        else:
            self._mode = "P"
            rawmode = "RGBA" if c == 4 else "RGB"
            self.palette = ImagePalette.raw(rawmode, palette.tobytes())
            self.palette.mode = rawmode  # Pillow keeps an RGBA palette's alpha in "P"
        self.tile = [ImageFile._Tile("fkm", (0, 0, w, h), 0, (c,))]

    def verify(self) -> None:
        """Check the whole file as the codec's parser does (lengths, CRCs, end marker)
        without decoding the strips; errors as Pillow's PNG plugin: OSError if the file is
        cut short, else SyntaxError."""
        from .codec.container import FkmError, parse

        if self.fp is None:
            raise RuntimeError("verify must be called directly after open")
        self.fp.seek(0)
        data = self.fp.read()
        try:
            parse(data, max_pixels=2**62)
        except FkmError as exc:
            if str(exc).startswith("truncated"):
                raise OSError(f"truncated .fkm file: {exc}") from None
            raise SyntaxError(f"broken .fkm file: {exc}") from None
        super().verify()


class FkmDecoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer):
        from .codec import FkmError, decode

        self.fd.seek(0)
        try:
            img = decode(self.fd.read())
        except FkmError as exc:
            raise OSError(f"broken .fkm file: {exc}") from None
        plane = img.indices if img.channels > 1 else img.palette[img.indices, 0]
        self.set_as_raw(np.ascontiguousarray(plane).tobytes(), "P" if img.channels > 1 else "L")
        return -1, 0


def _palette_of(im: Image.Image, k: int) -> np.ndarray:
    """(k, 3 or 4) uint8 palette of a P image, alpha from an RGBA palette or tRNS. Entries
    past a short palette are opaque black, as Pillow shows them."""
    rgba = im.palette is not None and im.palette.mode == "RGBA"
    raw = np.frombuffer(bytes(im.getpalette("RGBA" if rgba else "RGB")), np.uint8)
    raw = raw.reshape(-1, 4 if rgba else 3)
    trns = im.info.get("transparency")
    c = 4 if rgba or trns is not None else 3
    pal = np.zeros((max(k, len(raw)), c), np.uint8)
    if c == 4:
        pal[:, 3] = 255
    pal[:len(raw), :raw.shape[1]] = raw
    if not rgba and isinstance(trns, (bytes, bytearray)):
        alpha = np.frombuffer(bytes(trns), np.uint8)[:len(pal)]
        pal[:len(alpha), 3] = alpha
    elif not rgba and isinstance(trns, int) and 0 <= trns < len(pal):
        pal[trns, 3] = 0
    return np.ascontiguousarray(pal[:k])


def _grey_of(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """8-bit grey of a 1, L, I;16* or I image, and where its colour key (``transparency``)
    matches, compared before any reduction (None without a key)."""
    from .images import reduce_16_to_8

    if im.mode in ("1", "L"):
        samples = grey = np.asarray(im.convert("L"), dtype=np.uint8)
    else:
        samples = np.asarray(im)
        if im.mode == "I" and samples.size:
            lo, hi = int(samples.min()), int(samples.max())
            if lo < 0 or hi > 65535:
                raise ValueError(f"cannot save a mode I image with values {lo}..{hi} as .fkm "
                                 "(16-bit grey 0..65535 only): convert it to 8 bits first")
        grey = reduce_16_to_8(samples)
    key = im.info.get("transparency")
    if not isinstance(key, int) or isinstance(key, bool):
        return grey, None
    return grey, samples == key


def _grey_palette_image(im: Image.Image, colors: int):
    from .palette import PaletteImage

    grey, keyed = _grey_of(im)
    # One code per (grey, alpha) pair: the distinct ones, up to ``colors``, are kept exactly.
    codes = grey.astype(np.int32)
    if keyed is not None:
        codes = codes * 2 + ~keyed  # odd: opaque
    used = np.flatnonzero(np.bincount(codes.ravel(), minlength=512))
    if len(used) <= colors:
        lut = np.zeros(512, np.uint8)
        lut[used] = np.arange(len(used))
        if keyed is None:
            palette = used[:, None]
        else:
            g = used >> 1
            palette = np.stack([g, g, g, np.where(used & 1, 255, 0)], axis=1)
        return PaletteImage(palette.astype(np.uint8), lut[codes])
    from .quantize import quantize

    if keyed is None:
        q = quantize(grey, colors, seed=0)
    else:
        alpha = np.where(keyed, 0, 255).astype(np.uint8)
        q = quantize(np.stack([grey, grey, grey, alpha], axis=-1), colors, seed=0)
    return PaletteImage(q.palette, q.indices)


_GREY_MODES = ("1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _to_palette_image(im: Image.Image, colors: int):
    from .palette import PaletteImage

    if im.mode == "P":
        indices = np.asarray(im, dtype=np.uint8)
        k = int(indices.max()) + 1 if indices.size else 1
        return PaletteImage(_palette_of(im, k), indices)
    if im.mode in _GREY_MODES:
        return _grey_palette_image(im, colors)
    if im.mode == "F":
        raise ValueError("cannot save a mode F (floating-point) image as .fkm: convert it to "
                         "8 bits first (mode L or RGB)")
    has_alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
    array = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8)
    from .quantize import quantize

    q = quantize(array, colors, seed=0)
    return PaletteImage(q.palette, q.indices)


def _save(im: Image.Image, fp, filename) -> None:
    from .codec import encode

    colors = im.encoderinfo.get("colors", 256)
    if isinstance(colors, bool) or not isinstance(colors, (int, np.integer)):
        raise TypeError(f"colors must be an integer, got {colors!r}")
    if not 1 <= colors <= 256:
        raise ValueError(f"colors = {colors}, must be in 1..256")
    fp.write(encode(_to_palette_image(im, int(colors))))


def register() -> None:
    """Register the .fkm format with Pillow (imageio's Pillow plugin then reads and writes it)."""
    global _registered
    if _registered:
        return
    _registered = True
    Image.register_open(FORMAT, FkmImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extensions(FORMAT, [".fkm"])
    Image.register_mime(FORMAT, MIME)
    Image.register_decoder("fkm", FkmDecoder)
