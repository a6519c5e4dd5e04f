"""fastkm: fast exact K-means and colour quantization."""
from .palette import PaletteImage

__version__ = "0.1.0"
