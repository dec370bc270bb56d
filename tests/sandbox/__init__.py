"""Tests of bulkimg/sandbox/."""
