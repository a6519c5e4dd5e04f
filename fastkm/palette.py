"""The palette image: a (K, C) uint8 palette and an (H, W) uint8 index plane."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class PaletteImage:
    """A palette image. ``palette[indices]`` is the picture.

    ``palette`` is (K, C) uint8 with C in {1, 3, 4} (grey, RGB, RGBA) and 1 <= K <= 256;
    ``indices`` is (H, W) uint8 with every value < K. Two are equal when their palettes and
    index planes are (a generated ``==`` on the arrays raised "truth value ... ambiguous").
    """

    palette: np.ndarray
    indices: np.ndarray

    def __eq__(self, other):
        if not isinstance(other, PaletteImage):
            return NotImplemented
        return (np.array_equal(self.palette, other.palette)
                and np.array_equal(self.indices, other.indices))

    __hash__ = None  # mutable arrays inside

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
