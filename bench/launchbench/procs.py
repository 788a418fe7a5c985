"""CPU time and memory of processes, read from ``/proc`` (Linux only).

CPU time is the steadiest figure on a shared machine: other people's work slows a
request down but does not add to the CPU the server's own processes spend on it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    cpu: float  # user + system seconds
    cmdline: str


def _stat_fields(pid: int) -> list[str] | None:
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 4096).decode()
    except OSError:
        return None
    finally:
        os.close(fd)
    # The command name sits in parentheses and may itself contain spaces or ")".
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, in seconds; ``None`` once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the name: state(0) ppid(1) ... utime(11) stime(12) (fields 14 and 15 of stat(5)).
    return (int(fields[11]) + int(fields[12])) / TICKS


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def rss_bytes(pid: int) -> int | None:
    """VmRSS of a process, or ``None`` once it is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# Command lines by (pid, start time): reading them is most of the cost of a scan, and
# the samplers scan /proc several times a second on the machine they measure.
_CMDLINES: dict[tuple[int, str], str] = {}


def all_processes() -> list[ProcInfo]:
    found: list[ProcInfo] = []
    for entry in os.listdir(PROC):
        if not entry.isdigit():
            continue
        pid = int(entry)
        fields = _stat_fields(pid)
        if fields is None:
            continue
        key = (pid, fields[19])  # starttime: a reused pid is another process
        name = _CMDLINES.get(key)
        if name is None:
            name = _CMDLINES[key] = cmdline(pid)
        found.append(
            ProcInfo(
                pid=pid,
                ppid=int(fields[1]),
                cpu=(int(fields[11]) + int(fields[12])) / TICKS,
                cmdline=name,
            )
        )
    return found


def tree(root: int) -> list[ProcInfo]:
    """``root`` and every process descended from it."""
    procs = all_processes()
    children: dict[int, list[ProcInfo]] = {}
    by_pid = {p.pid: p for p in procs}
    for proc in procs:
        children.setdefault(proc.ppid, []).append(proc)
    if root not in by_pid:
        return []
    result: list[ProcInfo] = []
    todo = [by_pid[root]]
    while todo:
        proc = todo.pop()
        result.append(proc)
        todo.extend(children.get(proc.pid, ()))
    return result


def own_cpu_seconds() -> float:
    """This process's CPU (all threads), user + system."""
    times = os.times()
    return times.user + times.system


@dataclass
class CpuTracker:
    """CPU spent by a changing set of processes between :meth:`start` and :meth:`stop`.

    ``select`` names the processes of interest at each sample; a process first seen
    after the start counts from zero (it was born during the run), one that vanished
    counts up to its last sample. Sampling also records each process's highest VmRSS.
    """

    select: Callable[[], Iterable[ProcInfo]]
    interval: float = 0.5
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    peak_rss: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    _started: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        for proc in self.select():
            if proc.pid not in self.first:
                self.first[proc.pid] = proc.cpu if not self._started else 0.0
                self.names[proc.pid] = proc.cmdline
            self.last[proc.pid] = proc.cpu
            rss = rss_bytes(proc.pid)
            if rss is not None:
                self.peak_rss[proc.pid] = max(rss, self.peak_rss.get(proc.pid, 0))

    def start(self) -> None:
        self._sample()
        self._started = True
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> float:
        """Stop sampling; the CPU seconds spent by the selected processes meanwhile."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def tree_selector(root: int) -> Callable[[], list[ProcInfo]]:
    return lambda: tree(root)


def postgres_backends(database: str) -> Callable[[], list[ProcInfo]]:
    """The PostgreSQL backends connected to ``database`` (only this run's connections).

    A backend's title is ``postgres: [cluster: ]USER DATABASE HOST(PORT) STATE``.
    """

    def select() -> list[ProcInfo]:
        return [
            p
            for p in all_processes()
            if p.cmdline.startswith("postgres:") and f" {database} " in f"{p.cmdline} "
        ]

    return select


def postgres_background() -> Callable[[], list[ProcInfo]]:
    """The cluster's own processes (WAL writer, checkpointer...): shared with everyone."""

    def select() -> list[ProcInfo]:
        return [
            p
            for p in all_processes()
            if p.cmdline.startswith("postgres:")
            and any(
                name in p.cmdline
                for name in ("walwriter", "checkpointer", "background writer", "autovacuum")
            )
        ]

    return select


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


def machine_busy_seconds() -> float:
    """Non-idle CPU seconds of the whole machine so far (from /proc/stat)."""
    first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest time is already counted in user time
    return (sum(values[:8]) - idle) / TICKS


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
