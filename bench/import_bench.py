"""Benchmark of the meeting import: a 1,000-row dry run, its apply and its undo, against
the Zoom double answering every request after 50 ms.

    .venv/bin/python bench/import_bench.py [--rows 1000] [--latency 0.05] [--hosts 1]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Everything runs in one process: the tool (``ToolHarness``, as the tests use it) on a fresh
SQLite database (and a throwaway PostgreSQL database with ``--postgres``), and the Zoom
double behind the tool's HTTP client. The double checks every request and answer against
Zoom's OpenAPI document, as in the tests; its CPU counts in the figures. Results are
printed and written to ``bench/results/import-last-run.json``. Nothing here fails a build.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from ltipro.imports import service  # noqa: E402
from ltipro.plugin_settings import set_plugin_settings  # noqa: E402
from ltipro.storage.jobs_tables import jobs  # noqa: E402
from ltipro.testing.harness import ToolHarness, prepare_database  # noqa: E402
from ltipro.testing.zoom_double import (  # noqa: E402
    ACCOUNT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    ZoomDouble,
)

RESULTS = ROOT / "bench" / "results" / "import-last-run.json"


def _csv(ids: list[int], domain: str) -> bytes:
    lines = ["Meeting ID,Context ID,Domain,custom_canvas_course_id"]
    # 50 meetings per course, as a term's sections might have.
    lines += [f"{m},course-{i // 50},{domain},{1000 + i // 50}" for i, m in enumerate(ids)]
    return ("\r\n".join(lines) + "\r\n").encode()


async def run_one(database_url: str, rows: int, latency: float, hosts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        async with ToolHarness(database_url=database_url, instance=Path(folder)) as harness:
            double = ZoomDouble(latency=latency, daily_meeting_limit=10**6)
            harness.transport.add("api.zoom.us", double)
            harness.transport.add("zoom.us", double)
            await set_plugin_settings(
                harness.tool,
                harness.credential,
                "providers",
                {
                    "provider": "zoom",
                    "zoom.account_id": ACCOUNT_ID,
                    "zoom.client_id": CLIENT_ID,
                    "zoom.client_secret": CLIENT_SECRET,
                },
            )
            users = [double.add_user(f"scheduler{h}@example.edu") for h in range(hosts)]
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
            ids = [
                double.add_meeting(users[i % hosts], topic=f"Lecture {i}", start_time=start).id
                for i in range(rows)
            ]
            data = _csv(ids, "canvas.example.edu")
            credential = await harness.refresh_credential()
            figures: dict[str, Any] = {"rows": rows, "latency_s": latency, "hosts": hosts}

            cpu, wall = time.process_time(), time.perf_counter()
            parsed = service.read(harness.tool, credential, data)
            batch = await service.check(
                harness.tool, credential, parsed, file_name="bench.csv", actor="bench"
            )
            figures["dry_run_s"] = round(time.perf_counter() - wall, 2)
            figures["dry_run_cpu_s"] = round(time.process_time() - cpu, 2)
            figures["dry_run_zoom_requests"] = len(double.requests)
            assert batch.summary["add"] == rows, batch.summary

            double.requests.clear()
            store = service.batches_of(harness.tool)
            write = store.apply
            spent: list[float] = []

            async def timed_write(*args: Any, **kwargs: Any) -> None:
                began = time.perf_counter()
                await write(*args, **kwargs)
                spent.append(time.perf_counter() - began)

            store.apply = timed_write  # type: ignore[method-assign]
            cpu, wall = time.process_time(), time.perf_counter()
            applied = await service.apply(harness.tool, credential, batch.id, actor="bench")
            figures["apply_s"] = round(time.perf_counter() - wall, 2)
            figures["apply_cpu_s"] = round(time.process_time() - cpu, 2)
            figures["apply_zoom_requests"] = len(double.requests)
            figures["apply_write_s"] = round(sum(spent), 2)
            assert applied.status == "applied", applied.message
            async with harness.tool.repo.engine.connect() as conn:
                figures["jobs_queued"] = (
                    await conn.execute(select(jobs.c.kind, func.count()).group_by(jobs.c.kind))
                ).all()
            figures["jobs_queued"] = {kind: n for kind, n in figures["jobs_queued"]}

            cpu, wall = time.process_time(), time.perf_counter()
            plan = await service.undo(harness.tool, credential, batch.id, actor="bench")
            figures["undo_s"] = round(time.perf_counter() - wall, 2)
            assert plan.removed == rows
            return figures


@contextlib.contextmanager
def _postgres(server_url: str) -> Iterator[str]:
    from ltipro.testing.pytest_plugin import postgres_database

    with postgres_database(server_url, "ltipro_import_bench") as url:
        yield url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per Zoom answer")
    parser.add_argument("--hosts", type=int, default=1, help="Zoom users the meetings belong to")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": {},
    }
    results["load_average_at_start"] = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        prepare_database(url)
        results["runs"]["sqlite"] = asyncio.run(run_one(url, args.rows, args.latency, args.hosts))
    if args.postgres:
        with _postgres(args.postgres) as url:
            results["runs"]["postgresql"] = asyncio.run(
                run_one(url, args.rows, args.latency, args.hosts)
            )
    for name, figures in results["runs"].items():
        print(
            f"{name:<11} rows {figures['rows']}  dry run {figures['dry_run_s']} s "
            f"({figures['dry_run_zoom_requests']} Zoom requests, CPU {figures['dry_run_cpu_s']} s)  "
            f"apply {figures['apply_s']} s ({figures['apply_zoom_requests']} requests, "
            f"CPU {figures['apply_cpu_s']} s, writing {figures['apply_write_s']} s)  "
            f"undo {figures['undo_s']} s  jobs {figures['jobs_queued']}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
