"""Contributed methods: one folder each, described by its `submission.toml`."""
