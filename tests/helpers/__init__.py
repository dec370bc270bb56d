"""Helpers shared by test modules: a test module imports only these (never another test module,
nor conftest.py, which holds the fixtures)."""
