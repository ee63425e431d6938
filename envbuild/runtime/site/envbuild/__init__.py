"""The in-image `envbuild` package: only the dependency-free runtime (track API)."""
