"""Tests of bulkimg/plan/."""
