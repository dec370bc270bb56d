"""Tests of bulkimg/s3/."""
