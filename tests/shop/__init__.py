"""Tests of bulkimg/shop/."""
