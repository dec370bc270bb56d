"""The self-contained demo: sample data, a local S3 and the sandbox shop."""
