"""The release of keras-sage (read by the package root, the teacher files it writes, and the CLI)."""

__version__ = "0.1.0"
