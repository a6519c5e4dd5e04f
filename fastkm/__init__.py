"""fastkm: fast exact K-means and colour quantization."""
from . import dither, kernels, metrics, oklab
from .codec import FkmError, decode, encode, load, save
from .images import ImageError, read_image, write_png
from .kmeans import KMeans
from .palette import PaletteImage
from .quantize import Quantized, quantize
from .shared_palette import quantize_many

__version__ = "0.1.0"
__all__ = ["FkmError", "ImageError", "KMeans", "PaletteImage", "Quantized", "decode", "dither",
           "encode", "kernels", "load", "metrics", "oklab", "quantize", "quantize_many",
           "read_image", "save", "write_png"]
