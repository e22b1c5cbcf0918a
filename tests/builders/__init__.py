"""Synthetic DICOM dose objects for tests and benchmarks (no ../shared needed)."""
