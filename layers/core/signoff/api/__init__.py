"""The HTTP API: plumbing (problem details, size and media-type checks) and one routes module per function."""
