"""Real server processes for end-to-end tests: the tool under uvicorn and the LMS simulator.

The in-process :class:`~ltipro.testing.ToolHarness` covers almost everything; what it
cannot show is the tool as an administrator runs it: several processes sharing one
database, configured from ``LTIPRO_*`` variables and the ``ltipro`` command line, and a
real browser talking to them. This module starts such processes, waits until they
answer, and stops them (and anything they started) within bounded time::

    config = ToolConfig(instance=tmp_path / "a", base_url=f"http://localhost:{port}",
                        database_url=f"sqlite:///{tmp_path / 'ltipro.db'}")
    run_cli(config, "init")
    with start_tool(config, port=port, log_dir=tmp_path) as tool:
        httpx.get(tool.url + "/healthz")

Every wait has a timeout; a server that dies or never answers raises
:class:`ServerError` with the end of its log.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 120.0


class ServerError(RuntimeError):
    """A server process that did not start, or a command that failed."""


# Servers not stopped by their test are stopped when the interpreter exits normally.
_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()
PR_SET_PDEATHSIG = 1


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        server.stop(timeout=3)


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A child set-up that stops the server when the test process itself dies.

    Linux only (``prctl(PR_SET_PDEATHSIG)``), and only from the main thread: the signal
    follows the thread that started the child, not the process.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_up() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)

    return set_up


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on, picked at random so parallel runs rarely collide."""
    rng = random.SystemRandom()
    for _ in range(100):
        port = rng.randint(20000, 59999)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise ServerError("no free port found on the loopback interface")


@dataclass(eq=False)
class ServerProcess:
    """A started server: its address, its process (a group of its own) and its log."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_url: str

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        """The end of the server's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        """Everything the server has printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_until_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll the ready URL until it answers 200; stop the server and raise otherwise."""
        try:
            _poll_ready(self, timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Stop the server and its children: SIGTERM, then SIGKILL after ``timeout`` seconds.

        The server runs in a process group of its own, so uvicorn's worker processes stop
        with it and nothing is left behind. Returns the exit status.
        """
        _LIVE.discard(self)
        if self.process.poll() is not None:
            return self.process.returncode
        _signal_group(self.process, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(self.process, signal.SIGKILL)
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None
        finally:
            # Workers that outlived their parent are still in the group.
            _signal_group(self.process, signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def serve_app_in_thread(app: Any, port: int, name: str) -> Iterator[None]:
    """Serve an ASGI app (an API double, say) with uvicorn from a thread on 127.0.0.1.

    Waits until it is listening (at most 10 s, else :class:`ServerError` naming ``name``)
    and stops it within bounded time on leaving the block.
    """
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServerError(f"the {name} did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def _poll_ready(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not server.running:
                raise ServerError(
                    f"{server.name} exited with status {server.process.returncode} before it "
                    f"answered {server.ready_url}:\n{server.log_tail()}"
                )
            try:
                response = client.get(server.ready_url)
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                last_error = f"status {response.status_code}"
            time.sleep(0.1)
    raise ServerError(
        f"{server.name} did not answer {server.ready_url} within {timeout:.0f}s "
        f"({last_error}):\n{server.log_tail()}"
    )


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The group id is the server's own pid (start_new_session): only what it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def start_server(
    name: str,
    argv: Sequence[str],
    *,
    url: str,
    ready_path: str,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float = START_TIMEOUT,
    wait: bool = True,
) -> ServerProcess:
    """Start ``argv`` and wait until ``url + ready_path`` answers 200.

    Raises :class:`ServerError` (after stopping the process) when it exits early or does
    not answer within ``timeout`` seconds. With ``wait=False`` the caller starts several
    servers first and then calls :meth:`ServerProcess.wait_until_ready` on each.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
    server = ServerProcess(
        name=name, url=url, process=process, log_path=log_path, ready_url=url + ready_path
    )
    _LIVE.add(server)
    if wait:
        server.wait_until_ready(timeout)
    return server


# -- the tool ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolConfig:
    """One installation of the tool, as its ``LTIPRO_*`` environment describes it.

    Several processes started from one config (or from configs sharing database and
    secret key) are workers of one installation.
    """

    instance: Path
    base_url: str
    database_url: str
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    # The LMS plugins to load (LTIPRO_PLUGINS); None loads every installed one.
    plugins: Sequence[str] | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        """The process environment: this machine's, with only this config's ``LTIPRO_*``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LTIPRO_")}
        env.update(
            {
                "LTIPRO_INSTANCE": str(self.instance),
                "LTIPRO_BASE_URL": self.base_url,
                "LTIPRO_DATABASE_URL": self.database_url,
                "LTIPRO_SECRET_KEY": self.secret_key,
                # The simulator's key set is on 127.0.0.1, which production refuses to fetch.
                "LTIPRO_ALLOW_PRIVATE_URLS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if not self.base_url.startswith("https://"):
            # Plain http is allowed only for a development server.
            env["LTIPRO_DEV"] = "1"
        if self.plugins is not None:
            env["LTIPRO_PLUGINS"] = ",".join(self.plugins)
        env.update(self.extra)
        return env

    def worker(self, instance: Path) -> ToolConfig:
        """Another worker of the same installation (same database, secret key and URL)."""
        return dataclasses.replace(self, instance=instance)


def cli_command() -> list[str]:
    """The ``ltipro`` command installed beside this interpreter (as an admin runs it)."""
    script = Path(sys.executable).with_name("ltipro")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ltipro"]


def run_cli(
    config: ToolConfig, *args: str, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``ltipro ARGS`` for this installation; a failure raises with its output."""
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [*cli_command(), *args],
            env=config.environ(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerError(f"`ltipro {' '.join(args)}` did not finish in {timeout:.0f}s") from exc
    if result.returncode != 0:
        raise ServerError(
            f"`ltipro {' '.join(args)}` failed with status {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result


def register_platform(
    config: ToolConfig,
    *,
    credential: str,
    issuer: str,
    client_id: str,
    deployment_id: str,
    lms: str = "generic",
    create_credential: bool = True,
) -> None:
    """Register an LTI 1.3 platform the way an admin does: with the ``ltipro`` command.

    The platform's endpoints are the simulator's: ``ISSUER/auth``, ``ISSUER/token`` and
    ``ISSUER/jwks.json``.
    """
    if create_credential:
        run_cli(config, "credentials", "create", credential)
    issuer = issuer.rstrip("/")
    run_cli(
        config,
        "platforms",
        "add",
        "--credential",
        credential,
        "--lms",
        lms,
        "--issuer",
        issuer,
        "--client-id",
        client_id,
        "--deployment-id",
        deployment_id,
        "--auth-login-url",
        issuer + "/auth",
        "--auth-token-url",
        issuer + "/token",
        "--jwks-url",
        issuer + "/jwks.json",
        "--name",
        "LMS simulator",
    )


def start_tool(
    config: ToolConfig,
    *,
    port: int,
    log_dir: Path,
    name: str = "tool",
    host: str = LOOPBACK,
    timeout: float = START_TIMEOUT,
    wait: bool = True,
) -> ServerProcess:
    """The tool under uvicorn on ``host:port``, started as ``uvicorn ltipro.web.asgi:app``.

    The database must be migrated first (``ltipro init`` or ``ltipro db upgrade``).
    ``ServerProcess.url`` is the address the process listens on, which may differ from
    the configured public ``base_url`` (several workers behind one address).
    """
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "ltipro.web.asgi:app",
        "--host",
        host,
        "--port",
        str(port),
        "--timeout-graceful-shutdown",
        "3",
        "--log-level",
        "info",
    ]
    return start_server(
        name,
        argv,
        url=f"http://{host}:{port}",
        ready_path="/healthz",
        env=config.environ(),
        log_path=log_dir / f"{name}.log",
        timeout=timeout,
        wait=wait,
    )


# -- the LMS simulator ------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatorConfig:
    """The standalone simulator (``python -m ltipro.simulator``) as one LMS registration."""

    port: int
    tool_url: str
    key_file: Path
    client_id: str = "ltipro-simulator"
    deployment_id: str = "simulator-deployment-1"
    host: str = LOOPBACK
    # The LMS plugins whose example launches the pages offer; None: every installed one.
    plugins: Sequence[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.url + "/simulator"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "ltipro.simulator",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--issuer",
            self.issuer,
            "--tool-url",
            self.tool_url,
            "--client-id",
            self.client_id,
            "--deployment-id",
            self.deployment_id,
            "--key-file",
            str(self.key_file),
            *(["--plugins", ",".join(self.plugins)] if self.plugins is not None else []),
        ]


def start_simulator(
    config: SimulatorConfig,
    *,
    log_dir: Path,
    name: str = "simulator",
    timeout: float = START_TIMEOUT,
    wait: bool = True,
) -> ServerProcess:
    """The LMS simulator in a process of its own, ready once it publishes its key set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LTIPRO_")}
    env["PYTHONUNBUFFERED"] = "1"
    return start_server(
        name,
        config.argv(),
        url=config.url,
        ready_path="/simulator/jwks.json",
        env=env,
        log_path=log_dir / f"{name}.log",
        timeout=timeout,
        wait=wait,
    )


@contextlib.contextmanager
def running(*servers: ServerProcess) -> Iterator[tuple[ServerProcess, ...]]:
    """Stop every server on the way out, whatever happened."""
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
