"""Run the launch-floor benchmark: the HTTP floor, then the in-process floors, then the sums.

    .venv/bin/python bench/launch_floor.py                      # everything, default sizes
    .venv/bin/python bench/launch_floor.py --json bench/results/floor-last-run.json
    .venv/bin/python bench/launch_floor.py --no-postgresql --stacks raw-httptools,flask-gunicorn-2w

See the module docstrings of ``floorbench.http``, ``floorbench.inprocess`` and
``floorbench.statements`` for what each figure includes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from launchbench import procs
from launchbench.run import machine

from floorbench import http, inprocess, payload, statements
from floorbench.inprocess import Floor

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
REFERENCE_MS = 2.48  # the pylti1p3 reference's server CPU per launch (bench/README.md)


@dataclass
class HttpFloor:
    stack: str
    description: str
    server_cpu_ms: float  # median round, per launch (two requests)
    rounds_server_cpu_ms: list[float]
    launches: int  # per round
    errors: int
    launches_per_s: float
    p50_ms: float
    generator_cpu_ms: float
    load_average: list[tuple[float, float, float]]
    others_cores: list[float]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/launch_floor.py",
        description="What the irreducible parts of an LTI 1.3 launch cost, each alone.",
    )
    parser.add_argument(
        "--stacks",
        default=",".join(http.DEFAULT_STACKS),
        help=f"HTTP servers, from: {', '.join(http.STACKS)} (default: {','.join(http.DEFAULT_STACKS)})",
    )
    parser.add_argument("--users", type=int, default=8, help="concurrent browsers (default 8)")
    parser.add_argument(
        "--launches", type=int, default=1200, help="HTTP: launches per round (default 1200)"
    )
    parser.add_argument(
        "--warmup", type=int, default=200, help="HTTP: launches before the rounds (default 200)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds, median kept (default 3)")
    parser.add_argument(
        "--iterations",
        type=int,
        default=2000,
        help="in-process: calls per round of the small parts (default 2000; pages: a quarter)",
    )
    parser.add_argument(
        "--db-launches",
        type=int,
        default=200,
        help="in-process: launches' database work per round (default 200)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("LTIPRO_BENCH_DATABASE_URL", DEFAULT_PG),
        help="a PostgreSQL server to make a throwaway database on (default: "
        "$LTIPRO_BENCH_DATABASE_URL or %(default)s)",
    )
    parser.add_argument("--no-postgresql", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--skip-http", action="store_true", help="only the in-process floors")
    parser.add_argument(
        "--reference-ms",
        type=float,
        default=REFERENCE_MS,
        help="the reference's server CPU per launch the target is a quarter of "
        "(default %(default)s, bench/README.md's last run)",
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="do not run the reference tool (bench/launch.py --configs reference) in this run "
        "for a target measured on the machine as it is now",
    )
    parser.add_argument(
        "--reference-launches",
        type=int,
        default=400,
        help="the reference's launches per round (default 400)",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    unknown = [s for s in args.stacks.split(",") if s not in http.STACKS]
    if unknown:
        parser.error(f"unknown stacks: {', '.join(unknown)}")
    return args


def cpu_times() -> list[int]:
    """The machine's CPU time so far by kind, in ticks (the first line of /proc/stat)."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:]]


def machine_share(before: list[int], after: list[int]) -> dict[str, float]:
    """How busy the whole machine was between two :func:`cpu_times`, in cores.

    ``steal`` is time the hypervisor gave the virtual CPUs to others: where it is high,
    CPU time measured inside the machine is inflated and moves from run to run.
    """
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8]) or 1
    cores = os.cpu_count() or 1
    idle = delta[3] + delta[4]
    return {
        "busy_cores": round((total - idle - delta[7]) / total * cores, 2),
        "steal_cores": round(delta[7] / total * cores, 2),
    }


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# -- HTTP -----------------------------------------------------------------------------------


def run_http(args: argparse.Namespace, body: bytes, work_dir: Path) -> tuple[list[HttpFloor], str]:
    stacks = [http.STACKS[name] for name in args.stacks.split(",")]
    note = ""
    if any(s.fast for s in stacks):
        problem = http.ensure_fast()
        if problem:
            note = problem + "; the uvloop + httptools stacks were left out"
            log(note)
            stacks = [s for s in stacks if not s.fast]
    rounds: dict[str, list[http.HttpRound]] = {s.name: [] for s in stacks}
    with contextlib.ExitStack() as stack:
        servers = {}
        for s in stacks:
            servers[s.name] = stack.enter_context(http.serve(s, work_dir))
            log(f"HTTP: {s.name} warming up ({args.warmup} launches)")
            http.warm_up(servers[s.name], body, users=args.users, launches=args.warmup)
        # Rounds interleaved: every stack once, then again, so a change in the machine's
        # load meets all of them.
        for r in range(args.rounds):
            for s in stacks:
                measured = http.measure(
                    s, servers[s.name], body, users=args.users, launches=args.launches
                )
                rounds[s.name].append(measured)
                log(
                    f"HTTP round {r + 1}/{args.rounds}: {s.name}: "
                    f"{measured.server_cpu_ms:.3f} ms/launch, {measured.launches_per_s:.0f}/s"
                )
    floors = []
    for s in stacks:
        done = rounds[s.name]
        median = sorted(done, key=lambda m: m.server_cpu_ms)[(len(done) - 1) // 2]
        floors.append(
            HttpFloor(
                stack=s.name,
                description=s.description,
                server_cpu_ms=median.server_cpu_ms,
                rounds_server_cpu_ms=[m.server_cpu_ms for m in done],
                launches=median.launches,
                errors=sum(m.errors for m in done),
                launches_per_s=median.launches_per_s,
                p50_ms=median.p50_ms,
                generator_cpu_ms=median.generator_cpu_ms,
                load_average=[m.load_average for m in done],
                others_cores=[m.others_cores for m in done],
            )
        )
    return floors, note


# -- the reference, in this run ------------------------------------------------------------


def run_reference(args: argparse.Namespace, work_dir: Path) -> dict[str, Any] | None:
    """The pylti1p3 reference under ``bench/launch.py`` now: its server CPU per launch.

    The target is a quarter of the reference's CPU; on a shared machine that figure moves
    with the load (bench/README.md), so it is measured again beside the floors.
    """
    out = work_dir / "reference.json"
    argv = [
        sys.executable,
        str(http.BENCH_DIR / "launch.py"),
        "--configs",
        "reference",
        "--rounds",
        str(args.rounds),
        "--launches",
        str(args.reference_launches),
        "--warmup",
        "50",
        "--users",
        str(args.users),
        "--json",
        str(out),
    ]
    log(f"the reference: {' '.join(argv[1:])}")
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        log(f"the reference did not run: {done.stderr[-500:]}")
        return None
    result = json.loads(out.read_text())["results"][0]
    log(f"the reference: {result['server_cpu_ms']:.3f} ms/launch")
    return {
        "server_cpu_ms": result["server_cpu_ms"],
        "rounds_server_cpu_ms": result["rounds_server_cpu_ms"],
        "launches": result["launches"],
        "errors": result["errors"],
        "redis_cpu_ms": result["db_cpu_ms"],
        "load_average": result["load_average"],
        "others_cores": result["others_cores"],
    }


# -- in-process -----------------------------------------------------------------------------


def run_inprocess(args: argparse.Namespace, body: bytes, work_dir: Path) -> list[Floor]:
    n, rounds = args.iterations, max(args.rounds, 3)
    log("in-process: the id_token")
    floors = inprocess.token_floors(n, rounds)
    log("in-process: parsing, tokens, proxy headers, the page")
    floors += inprocess.request_floors(body, n, rounds)
    floors.append(inprocess.token_making_floor(n, rounds))
    floors.append(inprocess.proxy_floor(n * 2, rounds))
    floors += inprocess.page_floors(max(n // 4, 50), rounds)
    # uvloop in this process too (from the benchmark's own folder, never the tool's
    # dependencies), so the database drivers can be measured on the loop the cheapest
    # server stack runs.
    fast = http.ensure_fast() is None
    if fast and str(http.FAST_DIR) not in sys.path:
        sys.path.append(str(http.FAST_DIR))
    floors += inprocess.db_floors(
        work_dir,
        None if args.no_postgresql else args.pg_url,
        args.db_launches,
        args.rounds,
        uvloop=fast,
        log=log,
    )
    return floors


# -- the sums ---------------------------------------------------------------------------------


@dataclass
class Sum:
    name: str
    parts: list[tuple[str, float]]  # (what, server-process ms per launch)
    server_ms: float
    database_ms: float | None  # PostgreSQL backend CPU beside it
    target_ms: float
    same_run_target_ms: float | None  # a quarter of the reference measured in this run

    @staticmethod
    def _verdict(ms: float, target: float) -> str:
        word = "under" if ms <= target else "over"
        return f"{ms / target:.2f}x: {word} ({target:.2f} ms)"

    @property
    def verdict(self) -> str:
        return self._verdict(self.server_ms, self.target_ms)

    @property
    def same_run_verdict(self) -> str:
        if self.same_run_target_ms is None:
            return "-"
        return self._verdict(self.server_ms, self.same_run_target_ms)


def sums(
    http_floors: list[HttpFloor],
    floors: list[Floor],
    target_ms: float,
    same_run_target_ms: float | None,
) -> list[Sum]:
    by_http = {h.stack: h for h in http_floors}
    by_name = {f.name: f for f in floors}
    found = []

    def make(name: str, http_stack: str, others: list[str]) -> None:
        if http_stack not in by_http or any(o not in by_name for o in others):
            return
        h = by_http[http_stack]
        parts = [(f"HTTP, two requests ({h.stack})", h.server_cpu_ms)]
        parts += [(o, by_name[o].per_launch_us / 1000) for o in others]
        backend = [by_name[o].backend_us for o in others if by_name[o].backend_us is not None]
        found.append(
            Sum(
                name=name,
                parts=[(what, round(ms, 4)) for what, ms in parts],
                server_ms=round(sum(ms for _, ms in parts), 3),
                database_ms=round(sum(backend) / 1000, 3) if backend else None,
                target_ms=target_ms,
                same_run_target_ms=same_run_target_ms,
            )
        )

    def cheapest(*names: str) -> str:
        present = [n for n in names if n in by_name]
        return min(present, key=lambda n: by_name[n].per_launch_us) if present else names[0]

    common = ["rs256-cryptography", "parse-stdlib", "tokens-hmac"]
    make("cheapest, SQLite", "raw-httptools", [*common, "sqlite3-inline", "jinja2-light"])
    # The server's loop is uvloop: the cheaper of the two psycopg variants on it.
    pg = cheapest("psycopg-async@uvloop", "psycopg-async-pipeline@uvloop")
    make("cheapest, PostgreSQL", "raw-httptools", [*common, pg, "jinja2-light"])
    components = ["rs256-pyjwt", "parse-starlette", "tokens-hmac"]
    for label, stack, suffix in (
        ("as ltipro runs now (asyncio + h11)", "starlette-h11", ""),
        ("with uvloop + httptools", "starlette-httptools", "@uvloop"),
    ):
        make(
            f"ltipro's components {label}, SQLite",
            stack,
            [*components, "sqla-aiosqlite" + suffix, "jinja2-light"],
        )
        make(
            f"ltipro's components {label}, PostgreSQL",
            stack,
            [*components, "sqla-psycopg" + suffix, "jinja2-light"],
        )
    return found


# -- output ---------------------------------------------------------------------------------


def _rounds(values: list[float], digits: int) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def http_table(floors: list[HttpFloor]) -> str:
    lines = [
        "| HTTP stack | server CPU ms/launch (rounds) | launches/s | p50 ms | generator CPU ms/launch | load average (each round, 1 min) | rest of machine, cores |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for f in floors:
        loads = ", ".join(f"{la[0]:.2f}" for la in f.load_average)
        lines.append(
            f"| {f.stack}: {f.description} | **{f.server_cpu_ms:.3f}** ({_rounds(f.rounds_server_cpu_ms, 3)}) "
            f"| {f.launches_per_s:.0f} | {f.p50_ms:.1f} | {f.generator_cpu_ms:.2f} | {loads} "
            f"| {_rounds(f.others_cores, 2)} |"
        )
    return "\n".join(lines)


def floor_table(floors: list[Floor]) -> str:
    lines = [
        "| part | name | what | CPU µs/launch (rounds) | PostgreSQL backend µs/launch | wall µs/launch |",
        "|---|---|---|---:|---:|---:|",
    ]
    for f in floors:
        backend = (
            f"{f.backend_us:.0f} ({_rounds(f.rounds_backend_us, 0)})"
            if f.backend_us is not None
            else "-"
        )
        wall = f"{f.wall_us:.0f}" if f.wall_us is not None else "-"
        lines.append(
            f"| {f.part} | {f.name} | {f.description} "
            f"| **{f.per_launch_us:.1f}** ({_rounds(f.rounds_us, 1)}) | {backend} | {wall} |"
        )
    return "\n".join(lines)


def sum_table(found: list[Sum]) -> str:
    lines = [
        "| sum | parts (ms) | server CPU ms/launch | PostgreSQL backend ms/launch (beside) "
        "| against the target | against a quarter of the reference measured in this run |",
        "|---|---|---:|---:|---|---|",
    ]
    for s in found:
        parts = " + ".join(f"{what} {ms:.3f}" for what, ms in s.parts)
        db = f"{s.database_ms:.3f}" if s.database_ms is not None else "-"
        lines.append(
            f"| {s.name} | {parts} | **{s.server_ms:.3f}** | {db} | {s.verdict} "
            f"| {s.same_run_verdict} |"
        )
    return "\n".join(lines)


def sqlalchemy_table(floors: list[Floor]) -> str:
    """What SQLAlchemy adds to the driver, per launch and per statement."""
    by_name = {f.name: f for f in floors}
    per = statements.STATEMENTS_PER_LAUNCH
    lines = [
        "| database, loop | driver alone µs/launch | through SQLAlchemy µs/launch "
        "(one connection held) | added per statement µs (held) |",
        "|---|---:|---:|---:|",
    ]
    for label, raw, sqla, held in (
        ("SQLite, no thread (SQLAlchemy sync)", "sqlite3-inline", "sqla-sqlite-sync", None),
        ("SQLite, asyncio", "sqlite3-inline", "sqla-aiosqlite", "sqla-aiosqlite-held"),
        ("SQLite, uvloop", "sqlite3-inline", "sqla-aiosqlite@uvloop", None),
        ("PostgreSQL, asyncio", "psycopg-async", "sqla-psycopg", "sqla-psycopg-held"),
        ("PostgreSQL, uvloop", "psycopg-async@uvloop", "sqla-psycopg@uvloop", None),
    ):
        if raw not in by_name or sqla not in by_name:
            continue
        base = by_name[raw].per_launch_us
        through = by_name[sqla].per_launch_us
        held_us = by_name[held].per_launch_us if held in by_name else None
        held_text = f" ({held_us:.0f})" if held_us is not None else ""
        added_held = f" ({(held_us - base) / per:.0f})" if held_us is not None else ""
        lines.append(
            f"| {label} | {base:.0f} | {through:.0f}{held_text} "
            f"| {(through - base) / per:.0f}{added_held} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    target_ms = round(min(args.reference_ms / 4, 2.0), 3)
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    id_token = payload.sign_rs256(payload.id_token_claims(), key, "key-1")
    body = http.launch_body(id_token)
    load_start = procs.load_average()
    http_floors: list[HttpFloor] = []
    note = ""
    with tempfile.TemporaryDirectory(prefix="launch-floor-") as tmp:
        work_dir = Path(tmp)
        phases: dict[str, dict[str, float]] = {}
        mark = cpu_times()
        if not args.skip_http:
            http_floors, note = run_http(args, body, work_dir)
            phases["http"] = machine_share(mark, mark := cpu_times())
        reference = None if args.no_reference else run_reference(args, work_dir)
        if reference is not None:
            phases["reference"] = machine_share(mark, mark := cpu_times())
        floors = run_inprocess(args, body, work_dir)
        phases["in-process"] = machine_share(mark, cpu_times())
    same_run_target = (
        round(min(reference["server_cpu_ms"] / 4, 2.0), 3) if reference is not None else None
    )
    found = sums(http_floors, floors, target_ms, same_run_target)
    load_end = procs.load_average()
    elapsed = time.monotonic() - started
    sizes = {
        "login_query_bytes": len(payload.LOGIN_QUERY),
        "location_bytes": len(payload.LOCATION),
        "id_token_bytes": len(id_token),
        "form_body_bytes": len(body),
        "page_bytes": len(payload.page().encode()),
    }
    text = "\n\n".join(
        part
        for part in (
            http_table(http_floors) if http_floors else "",
            floor_table(floors),
            sqlalchemy_table(floors),
            sum_table(found),
        )
        if part
    )
    print(text)
    print(
        f"\ntarget: {target_ms:.2f} ms (a quarter of the reference's {args.reference_ms} ms, "
        f"at most 2 ms); load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at "
        f"the end; {elapsed:.0f} s"
    )
    if reference is not None:
        flask = next((h for h in http_floors if h.stack == "flask-gunicorn-2w"), None)
        share = (
            f"; its stack's HTTP floor (flask-gunicorn-2w) is "
            f"{flask.server_cpu_ms / reference['server_cpu_ms']:.0%} of it"
            if flask
            else ""
        )
        print(
            f"the reference in this run: {reference['server_cpu_ms']:.2f} ms/launch "
            f"(rounds {_rounds(reference['rounds_server_cpu_ms'], 2)}), so a quarter of it: "
            f"{same_run_target:.2f} ms{share}"
        )
    print(
        "the whole machine, in cores busy (of which stolen by the hypervisor): "
        + "; ".join(
            f"{k} {v['busy_cores']:.2f} ({v['steal_cores']:.2f})" for k, v in phases.items()
        )
    )
    if note:
        print(note)
    if args.json:
        fast = any(http.STACKS[s].fast for s in args.stacks.split(","))
        record: dict[str, Any] = {
            "machine": {**machine(), "sqlite": inprocess.sqlite_version()},
            "versions": http.versions(fast),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "sizes": sizes,
            "target_ms": target_ms,
            "reference_this_run": reference,
            "same_run_target_ms": same_run_target,
            "load_average_start": load_start,
            "load_average_end": load_end,
            "machine_cores_busy": phases,
            "elapsed_s": round(elapsed, 1),
            "note": note,
            "http": [asdict(h) for h in http_floors],
            "inprocess": [asdict(f) for f in floors],
            "sums": [
                {**asdict(s), "verdict": s.verdict, "same_run_verdict": s.same_run_verdict}
                for s in found
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    errors = sum(h.errors for h in http_floors)
    return 1 if errors else 0
