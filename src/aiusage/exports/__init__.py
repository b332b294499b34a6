"""Exports: CSV/JSONL jobs streamed from the store, signed expiring download URLs."""
