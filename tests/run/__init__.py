"""Tests of bulkimg/run/ (and the fault matrix's end-to-end promises)."""
