"""What goes into the image: the seeding hook and the track API (stdlib only).

Layout contract between the build and run code (image.pth_text writes the .pth):
- `site/` is copied verbatim into images at /opt/envbuild/site.
- The image's venv (and its conda environment, when there is one) gets `zz-envbuild.pth` with the
  lines `/opt/envbuild/site`, a project image's also the team base's site-packages
  (/opt/envbuild/base-venv/...; skipped where absent), and `import envbuild_hook`, so the hook
  runs before user code and `import envbuild.track` works inside the container.
"""
