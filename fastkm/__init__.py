"""fastkm: fast exact K-means and colour quantization.

Names are imported on first use (PEP 562), so ``import fastkm`` loads neither Numba nor the
kernels: a command that only reads a header or prints ``--help`` never pays for them.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# Public name -> the module that defines it; the submodules in _SUBMODULES are themselves
# the public names.
_SUBMODULES = {"codec", "dither", "kernels", "metrics", "oklab"}
_LAZY = {
    "FkmError": "codec", "decode": "codec", "encode": "codec", "load": "codec", "save": "codec",
    "ImageError": "images", "read_image": "images", "write_png": "images",
    "KMeans": "kmeans",
    "PaletteImage": "palette",
    "Quantized": "quantize", "quantize": "quantize",
    "quantize_many": "shared_palette",
    **{name: name for name in _SUBMODULES},
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastkm' has no attribute {name!r}")
    mod = importlib.import_module(f".{module}", __name__)
    value = mod if name in _SUBMODULES else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """Importing ``fastkm.quantize`` (the module) sets the package attribute ``quantize``;
    the public name is the function, so a submodule never replaces a name it defines."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in _LAZY and name not in _SUBMODULES:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

# Pillow opens and saves .fkm once fastkm is imported (the codec loads on first use).
from .pillow_plugin import register as _register_pillow  # noqa: E402

_register_pillow()
