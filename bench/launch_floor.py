"""Entry point of the launch-floor benchmark: ``.venv/bin/python bench/launch_floor.py --help``.

What the irreducible parts of an LTI 1.3 launch cost on this machine, each measured
alone: the two HTTP requests on several Python server stacks, verifying the RS256
id_token, parsing the form, the database work (single-use state and nonce, session,
course, launch log) on SQLite and PostgreSQL with and without SQLAlchemy, and rendering
the first page. See ``floorbench/run.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floorbench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
