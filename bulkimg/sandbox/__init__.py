"""Sandbox shop."""
