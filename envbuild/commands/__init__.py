"""One module per CLI command; each imports its heavy parts inside the function."""
