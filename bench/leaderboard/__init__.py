"""The leaderboard: markdown, details pages and figures rendered from results files alone."""

from bench.leaderboard.build import check_leaderboard, render, write_leaderboard

__all__ = ["check_leaderboard", "render", "write_leaderboard"]
