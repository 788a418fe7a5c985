"""A CPU-time sampling profiler for the server under load (``bench/launch.py --cpu-profile``).

Put on the server's ``PYTHONPATH`` with ``LAUNCHBENCH_CPU_PROFILE=PREFIX`` set, it waits
for the signal ``SIGRTMIN+3`` (:data:`TOGGLE`); from then until the next one it samples the running Python stack
every 2 ms of *CPU time the process consumed* (``ITIMER_PROF``), and writes the samples in
py-spy's raw format to ``PREFIX.PID.txt``. The benchmark sends the signals around the
measured phase only, so start-up and warm-up stay out of the profile.

Why not py-spy alone: py-spy samples on the wall clock and counts a thread as busy while
it is runnable, so on a machine shared with other work it blames whatever the server was
doing when the kernel handed the CPU to someone else (typically a send() that woke the
database). Sampling on consumed CPU time shows where the server's own CPU goes. Time in
a C function lands on the Python line that called it; CPU used by other threads
(aiosqlite's) lands on whatever the main thread was doing, so profile on PostgreSQL for
the clearest picture.
"""

from __future__ import annotations

import atexit
import collections
import os
import signal
from types import FrameType

_PREFIX = os.environ.get("LAUNCHBENCH_CPU_PROFILE")
_INTERVAL = 0.002
# A real-time signal: uvicorn and gunicorn leave it alone (gunicorn's master re-executes
# itself on SIGUSR2), and a forked gunicorn worker inherits the handler.
TOGGLE = signal.SIGRTMIN + 3
_FLUSH_EVERY = 1000


def _install(prefix: str) -> None:
    counts: collections.Counter[str] = collections.Counter()
    pending = 0

    def flush() -> None:
        if not counts:
            return
        # The pid now, not at start-up: gunicorn's workers are forks of one process.
        with open(f"{prefix}.{os.getpid()}.txt", "w") as out:
            for stack, count in counts.items():
                out.write(f"{stack} {count}\n")

    busy = False

    def sample(signum: int, frame: FrameType | None) -> None:
        # A signal handler raises into whatever the server was doing: never raise, and
        # never run inside itself (a sample can arrive while the last one is written).
        nonlocal pending, busy
        if busy:
            return
        busy = True
        try:
            stack: list[str] = []
            while frame is not None:
                code = frame.f_code
                stack.append(f"{code.co_qualname} ({code.co_filename}:{frame.f_lineno})")
                frame = frame.f_back
            counts[";".join(reversed(stack))] += 1
            pending += 1
            # Written from the handler itself (the main thread): no other thread touches
            # counts.
            if pending >= _FLUSH_EVERY:
                pending = 0
                flush()
        except Exception:
            pass  # a lost sample must not become a failed request
        finally:
            busy = False

    running = False

    def toggle(signum: int, frame: FrameType | None) -> None:
        nonlocal running, pending, busy
        if running:
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            busy = True
            try:
                flush()
            except OSError:
                pass
            finally:
                busy = False
        else:
            counts.clear()
            pending = 0
            signal.setitimer(signal.ITIMER_PROF, _INTERVAL, _INTERVAL)
        running = not running

    signal.signal(signal.SIGPROF, sample)
    signal.signal(TOGGLE, toggle)
    atexit.register(flush)


if _PREFIX:
    _install(_PREFIX)
