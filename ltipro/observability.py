"""Request ids, structured logs and Prometheus metrics, for running the tool in production.

Three things an operator needs to see what a fleet of worker processes does:

- a **request id** for every request (taken from a sane ``X-Request-ID`` header, made up
  otherwise), kept in a context variable so that every log line written while the request
  runs carries it, launch refusals and job logs included (a job's id stands in for it);
- **one log line per request**, as JSON (``LTIPRO_LOG_FORMAT=json``, the default outside
  development mode) or as text;
- **metrics** in the Prometheus text format 0.0.4. Several worker processes each count
  their own requests; with ``LTIPRO_METRICS_DIR`` set, every process writes its counts to a
  file of its own there (at most a second old, and once more when the process stops) and
  ``/metrics`` sums the files of all processes, so a scrape that reaches any one worker
  sees the whole installation. Files of processes that stopped stay in the sum, so
  counters never go backwards while the installation runs; ``ltipro serve`` empties the
  folder when it starts.

The registry is small and in-house on purpose: what it needs (counters and histograms
with labels, summed over processes) is a page of code, and nothing has to be set in the
environment before the first import, which a pre-forking server makes fragile.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import json
import logging
import math
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

# -- request ids ------------------------------------------------------------------------------

REQUEST_ID_HEADER = "x-request-id"
# What a proxy or load balancer is likely to send: UUIDs, hex, base64url, dotted ids.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ltipro_request_id", default=None
)


def new_request_id() -> str:
    return secrets.token_hex(16)


def accepted_request_id(value: str | None) -> str:
    """The id a client sent when it is safe to log and echo, otherwise a new one.

    A value with spaces, quotes or control characters could forge log lines or
    response headers, so it is replaced rather than cleaned.
    """
    if value and SANE_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request (or job) this code runs for, if any."""
    return _request_id.get()


@contextlib.contextmanager
def request_context(request_id: str) -> Iterator[str]:
    """Run the block with ``request_id`` on every log line it writes."""
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)


# -- logs -------------------------------------------------------------------------------------

LOG_FORMATS = ("json", "text")
# Attributes every LogRecord has; anything else was passed with ``extra=`` and is kept.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RequestIdFilter(logging.Filter):
    """Puts the current request id on each record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, pid, extras."""

    _second = -1
    _stamp = ""

    def _time(self, created: float) -> str:
        # One strftime per second, not per line.
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The readable form for development: the request id in brackets after the level."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get() or "-"
        return super().format(record)


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


_HANDLER_NAME = "ltipro-observability"


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Send the ``ltipro`` loggers to standard error in ``log_format``, once per process."""
    logger = logging.getLogger("ltipro")
    for handler in logger.handlers:
        if handler.get_name() == _HANDLER_NAME:
            handler.setFormatter(make_formatter(log_format))
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(RequestIdFilter())
    logger.addHandler(handler)
    logger.setLevel(level)
    # The handler above writes every line; the root logger would write warnings twice.
    logger.propagate = False


# -- metrics ----------------------------------------------------------------------------------

LabelValues = tuple[str, ...]
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Metric:
    """A metric family with fixed label names."""

    kind = "untyped"

    def __init__(self, registry: Registry, name: str, help: str, labels: Sequence[str]) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a metric name: {name!r}")
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        self._lock = registry.lock
        registry.add(self)

    def _key(self, labels: Mapping[str, object]) -> LabelValues:
        try:
            key = tuple([str(labels[n]) for n in self.label_names])
        except KeyError:
            key = ()
        if len(key) != len(labels) or len(key) != len(self.label_names):
            raise ValueError(
                f"{self.name} takes the labels {self.label_names}, got {sorted(labels)}"
            )
        return key

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError


class Counter(Metric):
    kind = "counter"

    def __init__(self, registry: Registry, name: str, help: str, labels: Sequence[str]) -> None:
        super().__init__(registry, name, help, labels)
        self.values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + amount
            _changes.dirty = True

    def value(self, **labels: object) -> float:
        return self.values.get(self._key(labels), 0.0)

    def snapshot(self) -> dict[str, Any]:
        return {"values": [[list(k), v] for k, v in self.values.items()]}


class Histogram(Metric):
    kind = "histogram"

    def __init__(
        self,
        registry: Registry,
        name: str,
        help: str,
        labels: Sequence[str],
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(registry, name, help, labels)
        self.buckets = tuple(sorted(buckets))
        # Per label set: one count per bucket (not cumulative), then the sum.
        self.values: dict[LabelValues, list[float]] = {}

    def observe(self, value: float, **labels: object) -> None:
        key = self._key(labels)
        # The first bucket whose upper bound is >= value (the last, +Inf, when none is).
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            row = self.values.get(key)
            if row is None:
                row = self.values[key] = [0.0] * (len(self.buckets) + 2)
            row[index] += 1
            row[-1] += value
            _changes.dirty = True

    def count(self, **labels: object) -> float:
        row = self.values.get(self._key(labels))
        return sum(row[:-1]) if row else 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "buckets": list(self.buckets),
            "values": [[list(k), list(v)] for k, v in self.values.items()],
        }


class Registry:
    """The process's metric families, in the order they were made."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.metrics: dict[str, Metric] = {}

    def add(self, metric: Metric) -> None:
        if metric.name in self.metrics:
            raise ValueError(f"the metric {metric.name} exists already")
        self.metrics[metric.name] = metric

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {name: m.snapshot() for name, m in self.metrics.items()}

    def reset(self) -> None:
        """Forget every value (for tests that count from zero)."""
        with self.lock:
            for metric in self.metrics.values():
                metric.values.clear()  # type: ignore[attr-defined]


def merge_snapshots(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum several processes' snapshots: counters and histogram buckets add up."""
    merged: dict[str, dict[LabelValues, Any]] = {}
    for snapshot in snapshots:
        for name, data in snapshot.items():
            target = merged.setdefault(name, {})
            for labels, value in data.get("values", []):
                key = tuple(labels)
                if isinstance(value, list):
                    current = target.get(key)
                    if current is None or len(current) != len(value):
                        target[key] = list(value)
                    else:
                        target[key] = [a + b for a, b in zip(current, value, strict=True)]
                else:
                    target[key] = target.get(key, 0.0) + value
    return {name: {"values": values} for name, values in merged.items()}


def render(
    registry: Registry,
    merged: Mapping[str, Any],
    gauges: Iterable[tuple[str, str, Sequence[str], Mapping[LabelValues, float]]] = (),
) -> str:
    """The text exposition format 0.0.4 of the summed values and of scrape-time gauges."""
    lines: list[str] = []
    for name, metric in registry.metrics.items():
        values: Mapping[LabelValues, Any] = merged.get(name, {}).get("values", {})
        lines.append(f"# HELP {name} {metric.help}")
        lines.append(f"# TYPE {name} {metric.kind}")
        for key in sorted(values):
            value = values[key]
            if isinstance(metric, Histogram):
                cumulative = 0.0
                bounds = [*metric.buckets, math.inf]
                for bound, count in zip(bounds, value[:-1], strict=True):
                    cumulative += count
                    le = f'le="{_number(bound)}"'
                    lines.append(
                        f"{name}_bucket{_labels(metric.label_names, key, le)} {_number(cumulative)}"
                    )
                labels = _labels(metric.label_names, key)
                lines.append(f"{name}_sum{labels} {_number(value[-1])}")
                lines.append(f"{name}_count{labels} {_number(cumulative)}")
            else:
                lines.append(f"{name}{_labels(metric.label_names, key)} {_number(value)}")
    for name, help, label_names, gauge_values in gauges:
        lines.append(f"# HELP {name} {help}")
        lines.append(f"# TYPE {name} gauge")
        for key in sorted(gauge_values):
            lines.append(f"{name}{_labels(label_names, key)} {_number(gauge_values[key])}")
    return "\n".join(lines) + "\n"


REGISTRY = Registry()


class _Changes:
    """Whether any value changed since the last flush (a plain flag, set under the lock)."""

    dirty = False


_changes = _Changes()

LAUNCHES = Counter(
    REGISTRY,
    "ltipro_launches_total",
    "Launches by LMS plugin and outcome (ok, refused).",
    ["lms", "outcome"],
)
HTTP_REQUESTS = Counter(
    REGISTRY,
    "ltipro_http_requests_total",
    "Requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    REGISTRY,
    "ltipro_http_request_duration_seconds",
    "Time to answer a request, by method and route template.",
    ["method", "route"],
)
OUTBOUND_REQUESTS = Counter(
    REGISTRY,
    "ltipro_outbound_requests_total",
    "Calls the tool made to providers and LMSs, by service, endpoint kind and status.",
    ["service", "endpoint", "status"],
)
OUTBOUND_LATENCY = Histogram(
    REGISTRY,
    "ltipro_outbound_request_duration_seconds",
    "Time providers and LMSs took to answer the tool, by service.",
    ["service"],
)
JOBS_RUN = Counter(
    REGISTRY,
    "ltipro_jobs_run_total",
    "Job attempts finished, by job kind and outcome (done, retry, dead, lost, released).",
    ["kind", "outcome"],
)


_launch_log = logging.getLogger("ltipro.launch")


def launch_recorded(lms: str | None, outcome: str, code: str | None = None) -> None:
    """Count and log one launch (called where every launch is written to the launch log)."""
    LAUNCHES.inc(lms=lms or "unknown", outcome=outcome)
    # The request's own line already says a launch worked; a refusal says why, so it is kept.
    level = logging.DEBUG if outcome == "ok" else logging.WARNING
    if _launch_log.isEnabledFor(level):
        _launch_log.log(
            level,
            "launch %s%s (%s)",
            outcome,
            f": {code}" if code else "",
            lms or "unknown LMS",
            extra={"lms": lms, "outcome": outcome, "code": code},
        )


def job_finished(kind: str, outcome: str) -> None:
    JOBS_RUN.inc(kind=kind, outcome=outcome)


# -- several processes: one snapshot file each -----------------------------------------------

SNAPSHOT_PREFIX = "metrics-"
FLUSH_INTERVAL = 1.0


class SharedMetrics:
    """This process's snapshot file in the shared folder, and the sum over all files."""

    def __init__(self, folder: Path, registry: Registry = REGISTRY) -> None:
        self.folder = folder
        self.registry = registry
        self.path = folder / f"{SNAPSHOT_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.json"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self) -> None:
        """Write this process's values (atomically: readers never see half a file)."""
        _changes.dirty = False
        data = json.dumps(self.registry.snapshot())
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(data)
        os.replace(tmp, self.path)

    def collect(self) -> dict[str, Any]:
        """Every process's values summed (this one's written first, so it is current)."""
        self.flush()
        snapshots = []
        for path in sorted(self.folder.glob(f"{SNAPSHOT_PREFIX}*.json")):
            try:
                snapshots.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # a file deleted or replaced under us: the next scrape has it
        return merge_snapshots(snapshots)

    def start(self) -> None:
        """Flush in a background thread whenever something changed, at most every second."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flush()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="ltipro-metrics-flush", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            # Written again when its file went (a restarted ``ltipro serve`` empties the folder).
            if _changes.dirty or not self.path.exists():
                with contextlib.suppress(OSError):
                    self.flush()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.flush()


_shared: SharedMetrics | None = None
_shared_lock = threading.Lock()


def shared_metrics(folder: Path | None) -> SharedMetrics | None:
    """The process's :class:`SharedMetrics` for ``folder`` (started on first use)."""
    global _shared
    if folder is None:
        return None
    with _shared_lock:
        if _shared is None or _shared.folder != folder:
            if _shared is not None:
                _shared.stop()
            _shared = SharedMetrics(folder)
            _shared.start()
        return _shared


def collect(folder: Path | None) -> dict[str, Any]:
    """The values to publish: the installation's sum, or this process's own."""
    shared = shared_metrics(folder)
    if shared is not None:
        return shared.collect()
    return merge_snapshots([REGISTRY.snapshot()])


def clear_folder(folder: Path) -> int:
    """Delete the snapshot files of an earlier run (``ltipro serve`` does it at start)."""
    removed = 0
    if folder.is_dir():
        for path in folder.glob(f"{SNAPSHOT_PREFIX}*"):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


def stop_sharing() -> None:
    """Write the last values of a stopping process."""
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.stop()
            _shared = None


# -- calls to providers and LMSs ----------------------------------------------------------------

# Zoom's commercial and government clouds; everything else the tool calls is an LMS.
PROVIDER_DOMAINS = {"zoom.us": "zoom", "zoomgov.com": "zoom"}


def service_of(host: str) -> str:
    """The kind of service a host is, for a label: never the host itself (unbounded)."""
    host = host.lower().rstrip(".")
    for domain, service in PROVIDER_DOMAINS.items():
        if host == domain or host.endswith("." + domain):
            return service
    return "lms"


def endpoint_of(path: str) -> str:
    """A coarse kind of endpoint: token requests and key sets apart from API calls."""
    lowered = path.lower()
    if "jwks" in lowered or lowered.endswith("/certs") or "/.well-known/" in lowered:
        return "keys"
    if lowered.endswith("/token") or "/oauth" in lowered or "/oauth2" in lowered:
        return "token"
    return "api"


class MetricsTransport(httpx.AsyncBaseTransport):
    """An httpx transport that counts and times every call made through the one it wraps.

    Labelled by :func:`service_of` the host and :func:`endpoint_of` the path, and by the
    status code, ``timeout`` or ``error``; never by the URL, which would make a series per
    course or meeting.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        service = service_of(request.url.host)
        status = "error"
        try:
            response = await self.inner.handle_async_request(request)
            status = str(response.status_code)
            return response
        except httpx.TimeoutException:
            status = "timeout"
            raise
        finally:
            OUTBOUND_REQUESTS.inc(
                service=service, endpoint=endpoint_of(request.url.path), status=status
            )
            OUTBOUND_LATENCY.observe(time.perf_counter() - start, service=service)

    async def aclose(self) -> None:
        await self.inner.aclose()
