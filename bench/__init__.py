"""Benchmarks: bulkimg against the spec's per-Image_SKU design (`python -m bench`)."""
