"""Runs at interpreter start inside envbuild images (via zz-envbuild.pth). Placeholder: the run issue fills it."""
