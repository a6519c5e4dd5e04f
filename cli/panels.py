"""Pictures the commands draw: the captioned side-by-side of `compare` (with its zoomed crops)
and the `sweep` plot."""

from __future__ import annotations

import io
import math

import numpy as np

from .errors import CliError

#: Widest a compare panel is drawn; a 5120 px photo is shown reduced, measured in full.
PANEL_WIDTH = 800
_GAP = 12
_CHECKER = 8
#: Magnification of the zoomed crops, nearest neighbour: each pixel becomes a ZOOM x ZOOM
#: block, so banding and dither patterns are seen, not averaged away by the reduction.
ZOOM = 4
#: A window counts as a gradient when its lightness varies by at least this much (standard
#: deviation, 0..255 scale); below that it is flat and shows nothing.
_MIN_STD = 4.0


def zoom_region(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left (y, x) of a ``size`` x ``size`` window of ``image`` where smooth gradients are.

    Among windows on a grid of step size/4 whose lightness varies (std >= _MIN_STD), the one
    whose mean gradient magnitude is smallest relative to that variation: a ramp (a sky, a
    shaded wall) changes a lot across the window but little from pixel to pixel, and that
    is where a few colours show as bands and dithering as grain. Texture, edges and flat
    areas all score worse. With no varied window at all, the most varied one. Sums
    over windows come from summed-area tables, so a 15 MP photo takes well under a second.
    """
    grey = _to_rgb(image).astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    h, w = grey.shape
    size = min(size, h, w)
    grad = np.zeros_like(grey)
    grad[:, :-1] += np.abs(np.diff(grey, axis=1))
    grad[:-1, :] += np.abs(np.diff(grey, axis=0))

    def window_sums(values):
        table = np.zeros((h + 1, w + 1))
        table[1:, 1:] = values.astype(np.float64).cumsum(0).cumsum(1)
        ys = np.arange(0, h - size + 1, max(1, size // 4))
        xs = np.arange(0, w - size + 1, max(1, size // 4))
        y0, x0 = ys[:, None], xs[None, :]
        return (table[y0 + size, x0 + size] - table[y0, x0 + size] - table[y0 + size, x0]
                + table[y0, x0]), ys, xs

    n = float(size * size)
    total, ys, xs = window_sums(grey)
    squares, _, _ = window_sums(grey.astype(np.float64) ** 2)
    gradient, _, _ = window_sums(grad)
    std = np.sqrt(np.maximum(squares / n - (total / n) ** 2, 0))
    score = np.where(std >= _MIN_STD, gradient / n / np.maximum(std, 1e-9), np.inf)
    if np.isinf(score).all():
        score = -std
    iy, ix = np.unravel_index(np.argmin(score), score.shape)
    return int(ys[iy]), int(xs[ix])


def zoomed(image: np.ndarray, region: tuple[int, int, int]) -> np.ndarray:
    """The ``(y, x, size)`` crop of ``image`` magnified ZOOM times by pixel repetition."""
    y, x, size = region
    crop = image[y:y + size, x:x + size]
    return np.repeat(np.repeat(crop, ZOOM, axis=0), ZOOM, axis=1)


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1|3|4) uint8 -> (H, W, 3) for display; alpha over a grey checkerboard."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 3:
        return image
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // _CHECKER + xx // _CHECKER) % 2)[..., None] == 0, 204, 153)
    alpha = image[:, :, 3:4].astype(np.float32) / 255
    return np.rint(image[:, :, :3] * alpha + board * (1 - alpha)).astype(np.uint8)


def zoom_size(width: int, height: int, panel_width: int = PANEL_WIDTH) -> int:
    """Side of the crop whose ZOOM x magnification is as wide as a panel is drawn."""
    shown = max(1, round(width * min(1.0, panel_width / width)))
    return max(1, min(shown // ZOOM, width, height))


def compose(panels: list[tuple[np.ndarray, str]], *, panel_width: int = PANEL_WIDTH,
            zoom: tuple[int, int, int] | None = None) -> np.ndarray:
    """Lay captioned pictures out in a grid (one row up to three) and return RGB uint8.

    With ``zoom`` = (y, x, size), each picture has its crop, magnified ZOOM times, drawn
    below it (``zoomed``), so that the same region of every panel can be compared.
    """
    from PIL import Image, ImageDraw, ImageFont

    height, width = panels[0][0].shape[:2]
    scale = min(1.0, panel_width / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    font_px = max(12, min(20, size[0] // 28))
    font = ImageFont.load_default(size=font_px)
    caption_h = font_px * 2
    zoom_h = zoom[2] * ZOOM + _GAP // 2 if zoom else 0
    cols = len(panels) if len(panels) <= 3 else math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / cols)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    # A small picture gets a cell as wide as its caption, so captions never overlap.
    text_w = max(math.ceil(measure.textlength(caption, font=font)) for _, caption in panels)
    cell_w, cell_h = max(size[0], text_w), size[1] + zoom_h + caption_h
    sheet = Image.new("RGB", (cols * cell_w + (cols + 1) * _GAP, rows * cell_h + (rows + 1) * _GAP),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for n, (picture, caption) in enumerate(panels):
        x = _GAP + (n % cols) * (cell_w + _GAP)
        y = _GAP + (n // cols) * (cell_h + _GAP)
        tile = Image.fromarray(_to_rgb(picture))
        if tile.size != size:
            # The same filter for every panel, so differences between panels are the
            # quantizer's and not the resampling's.
            tile = tile.resize(size, Image.Resampling.LANCZOS)
        sheet.paste(tile, (x, y))
        if zoom:
            crop = Image.fromarray(_to_rgb(zoomed(picture, zoom)))
            sheet.paste(crop, (x, y + size[1] + _GAP // 2))
        draw.text((x, y + size[1] + zoom_h + caption_h // 4), caption, fill="black", font=font)
    return np.asarray(sheet)


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CliError("plotting needs matplotlib: pip install 'fastkm[plot]' "
                       "(or leave out -o to get the table only)") from None


def sweep_plot(ks: list[int], psnrs: list[float], bpps: list[float], title: str,
               fmt: str) -> bytes:
    """PSNR and bits per pixel against K (log2 axis), rendered to ``fmt`` bytes."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and none is assumed
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    shown = [p if math.isfinite(p) else np.nan for p in psnrs]
    ax.plot(ks, shown, "o-", color="tab:blue", label="PSNR")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("K (palette colours)")
    ax.set_ylabel("PSNR (dB)", color="tab:blue")
    ax.grid(True, alpha=0.3)
    twin = ax.twinx()
    twin.plot(ks, bpps, "s--", color="tab:orange", label="bits per pixel")
    twin.set_ylabel("bits per pixel", color="tab:orange")
    twin.set_ylim(bottom=0)
    ax.set_title(title)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="lower right")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    return buffer.getvalue()
