"""Tests of catalog.py."""
