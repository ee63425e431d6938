"""What goes into the image: the seeding hook and the track API (stdlib only)."""
