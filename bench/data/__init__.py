"""Datasets: the v1 manifest format, its validation, the embedded phantom and importers."""
