"""Tests of bulkimg/formats/."""
