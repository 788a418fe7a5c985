"""Entry point of the calendar sync benchmark: ``.venv/bin/python bench/calendar_sync.py --help``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calendarbench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
