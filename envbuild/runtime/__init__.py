"""What goes into the image: the seeding hook and the track API (stdlib only).

Layout contract between the build and run code:
- `site/` is copied verbatim into images at /opt/envbuild/site.
- The image's venv gets `zz-envbuild.pth` with the lines `/opt/envbuild/site` and `import envbuild_hook`,
  so the hook runs before user code and `import envbuild.track` works inside the container.
"""
