"""Image files: the header parser (format, size, sanity) and the cache of measured sizes."""
