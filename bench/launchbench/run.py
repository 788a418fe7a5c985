"""Run the launch benchmark: every configuration, one after the other, in one run.

    .venv/bin/python bench/launch.py                        # everything, default sizes
    .venv/bin/python bench/launch.py --configs ltipro-sqlite-1,reference --launches 500
    .venv/bin/python bench/launch.py --cpu-profile /tmp/cpu # where the server's CPU goes

See bench/README.md for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform as platform_module
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from launchbench import procs
from launchbench.load import LoadResult, Target, login_request, percentile, run_load
from launchbench.platform import KeySetServer, PlatformKey, launch_claims, new_key, platform_for
from launchbench.profile import render, summarize
from launchbench.targets import DEPLOYMENT_ID, Running, ltipro, reference

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
ALL_CONFIGS = (
    "ltipro-sqlite-1",
    "reference",
    "ltipro-postgresql-1",
    "ltipro-sqlite-N",
    "ltipro-postgresql-N",
)
# The scale-out set-up (state, nonces and sessions in Redis), on request.
OPTIONAL_CONFIGS = ("ltipro-postgresql+redis-1", "ltipro-postgresql+redis-N")
SAMPLER_DIR = Path(__file__).resolve().parent / "cpusampler"
# The cpusampler's on/off signal (see cpusampler/sitecustomize.py).
SAMPLER_TOGGLE = signal.SIGRTMIN + 3


@dataclass
class Measurement:
    """One configuration's figures (times in milliseconds, memory in MiB)."""

    name: str
    database: str
    workers: int
    users: int
    launches: int
    errors: int
    error_samples: list[str]
    wall_s: float
    launches_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    login_p50_ms: float
    launch_post_p50_ms: float
    server_cpu_ms: float  # per launch, all of the server's processes
    db_cpu_ms: float | None  # per launch: this run's PostgreSQL backends and/or Redis
    db_note: str
    pg_background_cpu_ms: float | None  # per launch, the cluster's shared processes
    worker_rss_mib: list[float]
    supervisor_rss_mib: float | None
    generator_cpu_ms: float
    generator_sign_cpu_ms: float
    others_cores: float  # CPU the rest of the machine used meanwhile, in cores
    load_average: tuple[float, float, float]
    profile_summary: str | None = None
    # With --rounds: every round's server CPU per launch (this is the median round).
    rounds_server_cpu_ms: list[float] = field(default_factory=list)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _workers_of(tree: list[procs.ProcInfo], root: int) -> tuple[list[int], int | None]:
    """(worker pids, supervisor pid): a lone process is its own worker."""
    others = [
        p.pid
        for p in tree
        if p.pid != root
        and "resource_tracker" not in p.cmdline
        and "semaphore_tracker" not in p.cmdline
    ]
    if not others:
        return [root], None
    return others, root


def _signal_tree(root: int, sig: int) -> None:
    for proc in procs.tree(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


@contextlib.contextmanager
def _py_spy(root: int, out: Path, duration: float, native: bool = False) -> Iterator[None]:
    """py-spy sampling ``root`` and its children (wall clock) while the block runs."""
    argv = [
        str(Path(sys.executable).with_name("py-spy")),
        "record",
        "--pid",
        str(root),
        "--subprocesses",
        # Native stacks need the target paused while it is sampled.
        "--native" if native else "--nonblocking",
        "--rate",
        "200",
        "--format",
        "raw",
        "--duration",
        str(int(duration) + 30),
        "--output",
        str(out),
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if not out.exists():
            sys.stderr.write(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}\n")


@contextlib.contextmanager
def _sampling(root: int, prefix: Path | None) -> Iterator[None]:
    """The cpusampler on in every process of the server while the block runs."""
    if prefix is None:
        yield
        return
    _signal_tree(root, SAMPLER_TOGGLE)
    try:
        yield
    finally:
        _signal_tree(root, SAMPLER_TOGGLE)
        time.sleep(0.5)  # they write their files


def measure(
    running: Running,
    key_server: KeySetServer,
    key: PlatformKey,
    args: argparse.Namespace,
    *,
    py_spy_out: Path | None = None,
    sampler_prefix: Path | None = None,
) -> Measurement:
    """Warm the server up, then put it under load and read its processes' CPU and memory."""
    platform = platform_for(
        key,
        key_server.issuer,
        client_id=running.client_id,
        deployment_id=DEPLOYMENT_ID,
        login_url=running.login_url,
        launch_url=running.launch_url,
    )
    target = Target(
        name=running.name,
        url=running.server.url,
        login_path=running.login_path,
        page_marker=running.marker,
    )
    # Every login request signed (and its URL built) before the clock starts.
    total = args.warmup + args.launches
    requests = iter(
        [login_request(target, platform.login_params(launch_claims(i))) for i in range(total)]
    )
    # The warm-up fills every worker's caches (platform keys, templates, pools).
    warm = asyncio.run(
        run_load(
            target,
            platform,
            requests,
            users=args.users,
            launches=args.warmup,
            time_limit=args.time_limit,
            record=False,
        )
    )
    if warm.errors:
        raise SystemExit(
            f"{running.name}: {warm.errors} warm-up launches failed, e.g.\n"
            + "\n".join(warm.error_samples)
        )
    time.sleep(0.5)  # the warm-up's last writes settle

    root = running.server.process.pid
    server_cpu = procs.CpuTracker(procs.tree_selector(root))
    db_trackers: list[procs.CpuTracker] = []
    notes: list[str] = []
    background: procs.CpuTracker | None = None
    if running.pg_database:
        db_trackers.append(procs.CpuTracker(procs.postgres_backends(running.pg_database)))
        background = procs.CpuTracker(procs.postgres_background())
        notes.append("this run's PostgreSQL backends")
    if running.redis_pid:
        db_trackers.append(procs.CpuTracker(procs.tree_selector(running.redis_pid)))
        notes.append("this run's own Redis server")
    if running.database == "sqlite":
        notes.append("SQLite runs inside the server's processes")
    trackers = [server_cpu, *db_trackers, *([background] if background else [])]
    load_average = procs.load_average()
    busy_before = procs.machine_busy_seconds()
    spying = (
        _py_spy(root, py_spy_out, args.time_limit, args.native)
        if py_spy_out
        else contextlib.nullcontext()
    )
    with spying:
        for tracker in trackers:
            tracker.start()
        with _sampling(root, sampler_prefix):
            result: LoadResult = asyncio.run(
                run_load(
                    target,
                    platform,
                    requests,
                    users=args.users,
                    launches=args.launches,
                    time_limit=args.time_limit,
                )
            )
            server_seconds = server_cpu.stop()
            db_seconds = sum(t.stop() for t in db_trackers) if db_trackers else None
            background_seconds = background.stop() if background else None
    busy = procs.machine_busy_seconds() - busy_before

    n = max(result.launches, 1)
    worker_pids, supervisor = _workers_of(procs.tree(root), root)
    ours = server_seconds + (db_seconds or 0.0) + result.generator_cpu
    summary = None
    profiles: list[Path] = []
    if py_spy_out is not None and py_spy_out.exists():
        profiles = [py_spy_out]
    if sampler_prefix is not None:
        profiles = sorted(sampler_prefix.parent.glob(f"{sampler_prefix.name}.*.txt"))
    if profiles:
        summary = render(summarize(profiles), cpu_ms_per_launch=server_seconds * 1000 / n)
        profiles[0].with_name(f"{running.name}.summary.txt").write_text(summary + "\n")
    return Measurement(
        name=running.name,
        database=running.database,
        workers=running.workers,
        users=args.users,
        launches=result.launches,
        errors=result.errors,
        error_samples=result.error_samples,
        wall_s=round(result.wall, 3),
        launches_per_s=round(result.launches / result.wall, 1) if result.wall else 0.0,
        p50_ms=_ms(percentile(result.total, 50)),
        p95_ms=_ms(percentile(result.total, 95)),
        p99_ms=_ms(percentile(result.total, 99)),
        login_p50_ms=_ms(percentile(result.login, 50)),
        launch_post_p50_ms=_ms(percentile(result.launch, 50)),
        server_cpu_ms=_ms(server_seconds / n),
        db_cpu_ms=_ms(db_seconds / n) if db_seconds is not None else None,
        db_note=" + ".join(notes),
        pg_background_cpu_ms=(
            _ms(background_seconds / n) if background_seconds is not None else None
        ),
        worker_rss_mib=[
            round(server_cpu.peak_rss.get(pid, 0) / 2**20, 1) for pid in sorted(worker_pids)
        ],
        supervisor_rss_mib=(
            round(server_cpu.peak_rss.get(supervisor, 0) / 2**20, 1) if supervisor else None
        ),
        generator_cpu_ms=_ms(result.generator_cpu / n),
        generator_sign_cpu_ms=_ms(result.sign_cpu / n),
        others_cores=round(max(busy - ours, 0.0) / result.wall, 2) if result.wall else 0.0,
        load_average=load_average,
        profile_summary=summary,
    )


def median_round(measured: list[Measurement]) -> Measurement:
    """The round with the median server CPU, knowing every round's figure."""
    ordered = sorted(measured, key=lambda m: m.server_cpu_ms)
    chosen = ordered[(len(ordered) - 1) // 2]
    # A profile comes from the last round, whichever round is the median.
    profile = next((m.profile_summary for m in measured if m.profile_summary), None)
    return dataclasses.replace(
        chosen,
        profile_summary=profile,
        rounds_server_cpu_ms=[m.server_cpu_ms for m in measured],
        errors=sum(m.errors for m in measured),
        error_samples=[e for m in measured for e in m.error_samples][:5],
    )


def table(results: list[Measurement]) -> str:
    """The results as Markdown: the figures, ltipro against the reference, the context."""
    lines = [
        "| configuration | launches | errors | launches/s | p50 ms | p95 ms | p99 ms "
        "| server CPU ms/launch | DB CPU ms/launch | RSS per worker MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        db = f"{r.db_cpu_ms:.2f}" if r.db_cpu_ms is not None else "(in the server)"
        rss = ", ".join(f"{v:.0f}" for v in r.worker_rss_mib)
        if r.supervisor_rss_mib:
            rss += f" (+{r.supervisor_rss_mib:.0f} supervisor)"
        cpu = f"{r.server_cpu_ms:.2f}"
        if len(r.rounds_server_cpu_ms) > 1:
            cpu += " (" + ", ".join(f"{v:.1f}" for v in r.rounds_server_cpu_ms) + ")"
        lines.append(
            f"| {r.name} | {r.launches} | {r.errors} | {r.launches_per_s:.0f} | {r.p50_ms:.0f} "
            f"| {r.p95_ms:.0f} | {r.p99_ms:.0f} | {cpu} | {db} | {rss} |"
        )
    ref = next((r for r in results if r.name.startswith("reference")), None)
    if ref is not None and ref.launches:
        lines += [
            "",
            "| configuration | throughput / reference | p50 / reference | p99 / reference "
            "| server CPU / reference | target: server CPU <= 1/4 of the reference's and <= 2 ms |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in results:
            if r is ref:
                continue
            cpu_ratio = r.server_cpu_ms / ref.server_cpu_ms if ref.server_cpu_ms else float("nan")
            goal = min(0.25 * ref.server_cpu_ms, 2.0)
            verdict = (
                "met"
                if r.server_cpu_ms <= goal
                else f"missed by {r.server_cpu_ms / goal:.1f}x ({r.server_cpu_ms:.2f} ms "
                f"against {goal:.2f} ms)"
            )
            lines.append(
                f"| {r.name} | {r.launches_per_s / ref.launches_per_s:.2f} "
                f"| {r.p50_ms / ref.p50_ms:.2f} | {r.p99_ms / ref.p99_ms:.2f} "
                f"| {cpu_ratio:.2f} | {verdict} |"
            )
    lines += [
        "",
        "| configuration | generator CPU ms/launch (id_token signing) "
        "| rest of the machine, cores busy | load average at start "
        "| PostgreSQL shared processes ms/launch |",
        "|---|---:|---:|---|---:|",
    ]
    for r in results:
        shared = f"{r.pg_background_cpu_ms:.2f}" if r.pg_background_cpu_ms is not None else "-"
        lines.append(
            f"| {r.name} | {r.generator_cpu_ms:.2f} ({r.generator_sign_cpu_ms:.2f}) "
            f"| {r.others_cores:.2f} | {' / '.join(f'{v:.2f}' for v in r.load_average)} "
            f"| {shared} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, IndexError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory": memory,
        "kernel": platform_module.release(),
        "python": platform_module.python_version(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/launch.py",
        description="Complete LTI 1.3 launches against ltipro and a pylti1p3 reference tool.",
    )
    parser.add_argument(
        "--configs",
        default=",".join(ALL_CONFIGS),
        help="comma-separated, run in this order, from: ltipro-{sqlite,postgresql}-{1,N}, "
        f"ltipro-postgresql+redis-{{1,N}}, reference (default: {','.join(ALL_CONFIGS)})",
    )
    parser.add_argument("--workers", type=int, default=2, help="N, the several workers (default 2)")
    parser.add_argument("--users", type=int, default=8, help="concurrent browsers (default 8)")
    parser.add_argument(
        "--launches",
        type=int,
        default=1500,
        help="measured launches per configuration at most (default 1500)",
    )
    parser.add_argument(
        "--warmup", type=int, default=100, help="launches before measuring (default 100)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every configuration this many times, interleaved, and report the round "
        "with the median server CPU (default 1)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=40.0,
        help="seconds of measured load per configuration at most (default 40)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("LTIPRO_BENCH_DATABASE_URL", DEFAULT_PG),
        help="PostgreSQL server for the throwaway databases (default: "
        f"$LTIPRO_BENCH_DATABASE_URL or {DEFAULT_PG})",
    )
    parser.add_argument(
        "--log-level", default="info", help="ltipro serve --log-level (default info, as shipped)"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add to ltipro's server environment (repeatable), e.g. to try a setting",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument(
        "--cpu-profile",
        type=Path,
        metavar="DIR",
        help="sample every server's stacks on consumed CPU time during the measured phase",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="record py-spy profiles (wall clock) into DIR"
    )
    parser.add_argument(
        "--native", action="store_true", help="with --profile: C frames too (py-spy --native)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working folder (logs)")
    args = parser.parse_args(argv)
    if not 1 <= args.launches <= 10000 or not 1 <= args.users <= 256:
        parser.error("--launches must be 1..10000 and --users 1..256")
    if not 0 <= args.warmup <= 1000:
        parser.error("--warmup must be 0..1000")
    if not 0 < args.time_limit <= 120:
        parser.error("--time-limit is more than 0 and at most 120 seconds per configuration")
    if not 1 <= args.rounds <= 9:
        parser.error("--rounds must be 1..9")
    if not 1 <= args.workers <= 32:
        parser.error("--workers must be 1..32")
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in args.configs if c not in ALL_CONFIGS + OPTIONAL_CONFIGS]
    if unknown:
        parser.error(
            f"unknown configurations: {', '.join(unknown)} "
            f"(choose from {', '.join(ALL_CONFIGS + OPTIONAL_CONFIGS)})"
        )
    server_env: dict[str, str] = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--server-env takes NAME=VALUE (got {item!r})")
        server_env[name] = value
    args.server_env = server_env
    for folder in ("cpu_profile", "profile"):
        if getattr(args, folder) is not None:
            setattr(args, folder, getattr(args, folder).resolve())
            getattr(args, folder).mkdir(parents=True, exist_ok=True)
    return args


def _sampler_env(args: argparse.Namespace, config: str, base: dict[str, str]) -> dict[str, str]:
    """``base``, plus what turns the cpusampler on in the server (with --cpu-profile)."""
    if args.cpu_profile is None:
        return dict(base)
    path = ":".join(p for p in (str(SAMPLER_DIR), base.get("PYTHONPATH", "")) if p)
    return {
        **base,
        "PYTHONPATH": path,
        "LAUNCHBENCH_CPU_PROFILE": str(args.cpu_profile / config),
    }


def start(
    config: str, args: argparse.Namespace, issuer: str, work: Path
) -> contextlib.AbstractContextManager[Running]:
    """The server of one configuration (``reference`` or ``ltipro-DB-{1,N}``)."""
    if config == "reference":
        return reference(issuer=issuer, work_dir=work, extra_env=_sampler_env(args, config, {}))
    _, database, count = config.split("-")
    return ltipro(
        database=database.removesuffix("+redis"),
        redis=database.endswith("+redis"),
        workers=args.workers if count == "N" else 1,
        issuer=issuer,
        work_dir=work,
        pg_admin_url=args.pg_url,
        log_level=args.log_level,
        extra_env=_sampler_env(args, config, args.server_env),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ltipro-bench-"))
    key = new_key()
    key_server = KeySetServer(key).start()
    rounds: dict[str, list[Measurement]] = {config: [] for config in args.configs}
    try:
        # Rounds outside, configurations inside: a change in the machine's load meanwhile
        # touches every configuration alike.
        for round_number in range(1, args.rounds + 1):
            for config in args.configs:
                label = f" (round {round_number} of {args.rounds})" if args.rounds > 1 else ""
                sys.stderr.write(f"== {config}{label}\n")
                profiled = round_number == args.rounds  # profiles: the last round only
                with start(config, args, key_server.issuer, work) as running:
                    measurement = measure(
                        running,
                        key_server,
                        key,
                        args,
                        py_spy_out=(
                            args.profile / f"{config}.txt" if args.profile and profiled else None
                        ),
                        sampler_prefix=(
                            args.cpu_profile / config if args.cpu_profile and profiled else None
                        ),
                    )
                rounds[config].append(measurement)
                sys.stderr.write(
                    f"   {measurement.launches} launches, {measurement.errors} errors, "
                    f"{measurement.launches_per_s} /s, "
                    f"server CPU {measurement.server_cpu_ms} ms/launch\n"
                )
                for sample in measurement.error_samples:
                    sys.stderr.write(f"   error: {sample[:300]}\n")
    finally:
        key_server.stop()
        if args.keep:
            sys.stderr.write(f"logs kept in {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results = [median_round(rounds[config]) for config in args.configs if rounds[config]]
    print(table(results))
    for r in results:
        if r.profile_summary:
            print(f"\n## Profile: {r.name}\n\n{r.profile_summary}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {
            "configs": args.configs,
            "users": args.users,
            "launches": args.launches,
            "warmup": args.warmup,
            "time_limit": args.time_limit,
            "workers": args.workers,
            "rounds": args.rounds,
            "log_level": args.log_level,
            "server_env": args.server_env,
            "profiled": bool(args.profile or args.cpu_profile),
        }
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "settings": settings,
                    "results": [
                        {k: v for k, v in asdict(r).items() if k != "profile_summary"}
                        for r in results
                    ],
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if all(r.errors == 0 for r in results) else 1
