"""The palette image: a (K, C) uint8 palette and an (H, W) uint8 index plane."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PaletteImage:
    """A palette image. ``palette[indices]`` is the picture.

    ``palette`` is (K, C) uint8 with C in {1, 3, 4} (grey, RGB, RGBA) and 1 <= K <= 256;
    ``indices`` is (H, W) uint8 with every value < K.
    """

    palette: np.ndarray
    indices: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.indices.shape

    @property
    def n_colors(self) -> int:
        return self.palette.shape[0]

    @property
    def channels(self) -> int:
        return self.palette.shape[1]

    def to_image(self) -> np.ndarray:
        """The (H, W, C) uint8 picture (C = 1 for grey)."""
        return self.palette[self.indices]
