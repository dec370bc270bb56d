"""Image files: the header parser (format, size, sanity), the spec's acceptance rules and the cache
of measured sizes."""
