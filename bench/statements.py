"""Database work per launch, counted: ``.venv/bin/python bench/statements.py --help``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from launchbench.statements import main

if __name__ == "__main__":
    raise SystemExit(main())
