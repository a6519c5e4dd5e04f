"""A Pillow plugin for .fkm files: ``Image.open``, ``Image.save`` and, through Pillow, imageio.

``import fastkm`` calls ``register()``. What Pillow sees:

- RGB and RGBA palettes open as mode ``P`` (an RGBA palette is a Pillow ``"RGBA"`` palette,
  so ``convert("RGBA")`` keeps the alpha); greyscale files open as mode ``L`` (the grey
  levels, not the indices).
- ``Image.open`` reads only the header and the palette; the strips are decoded on
  ``load()``.
- A file that is not a .fkm, or whose header or palette is damaged, fails at open
  (``UnidentifiedImageError``); a damaged strip fails at ``load()`` with an ``OSError``
  carrying fastkm's message.
- ``save``: ``P`` and ``L`` images are encoded as they are (the palette cut to the indices
  used; ``L`` keeps its distinct grey levels, lossless up to 256 of them, else quantized);
  any other mode is quantized by fastkm first, to ``colors`` entries (save option, 256 by
  default).

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


def _palette_of(im: Image.Image) -> np.ndarray:
    """(256, 3 or 4) uint8 palette of a P image, alpha from an RGBA palette or tRNS."""
    mode = im.palette.mode if im.palette is not None else "RGB"
    if mode == "RGBA":
        pal = np.frombuffer(bytes(im.getpalette("RGBA")), np.uint8).reshape(-1, 4)
        return pal
    pal = np.frombuffer(bytes(im.getpalette("RGB")), np.uint8).reshape(-1, 3)
    trns = im.info.get("transparency")
    if trns is None:
        return pal
    alpha = np.full(len(pal), 255, np.uint8)
    if isinstance(trns, (bytes, bytearray)):
        alpha[:len(trns)] = np.frombuffer(bytes(trns), np.uint8)[:len(pal)]
    elif isinstance(trns, int) and trns < len(pal):
        alpha[trns] = 0
    return np.concatenate([pal, alpha[:, None]], axis=1)


def _to_palette_image(im: Image.Image, colors: int):
    from .palette import PaletteImage

    if not 1 <= colors <= 256:
        raise ValueError(f"colors = {colors}, must be in 1..256")
    if im.mode == "P":
        indices = np.asarray(im, dtype=np.uint8)
        palette = _palette_of(im)
        k = int(indices.max()) + 1 if indices.size else 1
        if k > len(palette):  # a short palette: indices past it are black, as Pillow shows them
            palette = np.concatenate([palette, np.zeros((k - len(palette), palette.shape[1]),
                                                        np.uint8)])
        return PaletteImage(np.ascontiguousarray(palette[:k]), indices)
    if im.mode in ("1", "L"):
        grey = np.asarray(im.convert("L"), dtype=np.uint8)
        levels = np.flatnonzero(np.bincount(grey.ravel(), minlength=256))
        if len(levels) <= colors:
            lut = np.zeros(256, np.uint8)
            lut[levels] = np.arange(len(levels), dtype=np.uint8)
            return PaletteImage(levels.astype(np.uint8)[:, None], lut[grey])
        array = grey
    else:
        has_alpha = "A" in im.mode or "transparency" in im.info
        array = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8)
    from .quantize import quantize

    q = quantize(array, colors, seed=0)
    return PaletteImage(q.palette, q.indices)


def _save(im: Image.Image, fp, filename) -> None:
    from .codec import encode

    colors = int(im.encoderinfo.get("colors", 256))
    fp.write(encode(_to_palette_image(im, colors)))


def register() -> None:
    """Register the .fkm format with Pillow (and its extension with imageio, if loaded)."""
    global _registered
    if _registered:
        return
    _registered = True
    Image.register_open(FORMAT, FkmImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extensions(FORMAT, [".fkm"])
    Image.register_mime(FORMAT, MIME)
    Image.register_decoder("fkm", FkmDecoder)
