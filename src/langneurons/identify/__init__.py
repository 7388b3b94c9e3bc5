"""Identify language neurons: record activation statistics, then select with LAPE."""

from .lape import identify, identify_files
from .record import record
from .stats import LanguageStats, load_stats_dir

__all__ = ["LanguageStats", "identify", "identify_files", "load_stats_dir", "record"]
