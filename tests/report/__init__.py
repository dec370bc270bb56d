"""Tests of bulkimg/report/."""
