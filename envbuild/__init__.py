"""envbuild: reproducible, container-first environments and run records for ML projects."""

__version__ = "0.1.0"
