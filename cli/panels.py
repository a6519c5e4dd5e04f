"""Pictures the commands draw: the captioned side-by-side of `compare` and the `sweep` plot."""

from __future__ import annotations

import io
import math

import numpy as np

from .errors import CliError

#: Widest a compare panel is drawn; a 5120 px photo is shown reduced, measured in full.
PANEL_WIDTH = 800
_GAP = 12
_CHECKER = 8


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


def compose(panels: list[tuple[np.ndarray, str]], *, panel_width: int = PANEL_WIDTH) -> np.ndarray:
    """Lay captioned pictures out in a grid (one row up to three) and return RGB uint8."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = panels[0][0].shape[:2]
    scale = min(1.0, panel_width / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    font_px = max(12, min(20, size[0] // 28))
    font = ImageFont.load_default(size=font_px)
    caption_h = font_px * 2
    cols = len(panels) if len(panels) <= 3 else math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / cols)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    # A small picture gets a cell as wide as its caption, so captions never overlap.
    text_w = max(math.ceil(measure.textlength(caption, font=font)) for _, caption in panels)
    cell_w, cell_h = max(size[0], text_w), size[1] + caption_h
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
        draw.text((x, y + size[1] + caption_h // 4), caption, fill="black", font=font)
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
