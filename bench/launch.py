"""Entry point of the launch benchmark: ``.venv/bin/python bench/launch.py --help``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from launchbench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
