"""NCCT Stroke Bench: a benchmark and challenge harness for stroke segmentation on NCCT."""

__version__ = "0.1.0"
