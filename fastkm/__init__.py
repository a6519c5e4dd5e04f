"""fastkm: fast exact K-means and colour quantization."""
from . import kernels, metrics
from .codec import FkmError, decode, encode, load, save
from .images import ImageError, read_image, write_png
from .kmeans import KMeans
from .palette import PaletteImage
from .quantize import Quantized, quantize

__version__ = "0.1.0"
__all__ = ["FkmError", "ImageError", "KMeans", "PaletteImage", "Quantized", "decode", "encode",
           "kernels", "load", "metrics", "quantize", "read_image", "save", "write_png"]
