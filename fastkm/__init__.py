"""fastkm: fast exact K-means and colour quantization."""
from . import kernels
from .codec import FkmError, decode, encode, load, save
from .kmeans import KMeans
from .palette import PaletteImage
from .quantize import Quantized, quantize

__version__ = "0.1.0"
__all__ = ["FkmError", "KMeans", "PaletteImage", "Quantized", "decode", "encode", "kernels", "load",
           "quantize", "save"]
