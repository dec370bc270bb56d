"""The preview page (output/preview.html) and its thumbnails."""
