"""Batch scoring: the local streaming engine, output naming and the CLI progress bar."""
