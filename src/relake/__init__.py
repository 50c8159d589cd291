"""relake: version and clean web-scale image-text link datasets with DuckDB."""

from relake.errors import RelakeError

__version__ = "0.1.0"
__all__ = ["RelakeError", "__version__"]
