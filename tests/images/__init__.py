"""Tests of bulkimg/images/."""
