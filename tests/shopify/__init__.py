"""Tests of bulkimg/shopify/."""
