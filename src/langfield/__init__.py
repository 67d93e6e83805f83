"""langfield: language-guided neural radiance fields on a fast, CPU-first NeRF core.

Importing the package is cheap: heavy modules (torch, the methods) load only when used.
"""

__version__ = "0.1.0"

from langfield.errors import LangfieldError

__all__ = ["LangfieldError", "__version__"]
