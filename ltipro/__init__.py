"""ltipro: video meetings in LMS courses, with every LMS as a plugin."""

from ltipro.hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
