"""A TCP proxy the fault tests put between the tool and a shared server, and cut.

The machine's PostgreSQL and Redis serve every test run: they are never stopped. The tool
is pointed at this proxy instead, and :meth:`TcpProxy.cut` makes the server vanish for
the tool alone — open connections are reset and new ones refused, as when a database host
goes down — until :meth:`TcpProxy.restore`. :meth:`TcpProxy.stall` makes it answer
nothing at all instead (connections accepted, nothing ever comes back), as behind a
firewall that drops packets. The proxy runs its own event loop in a thread,
so tests driving server processes with blocking calls can cut it at any moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

LOOPBACK = "127.0.0.1"
CHUNK = 65536


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; ``cut()`` and ``restore()`` it."""

    def __init__(self, target_host: str, target_port: int, port: int) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._stalled = False

    # -- control, from the test's thread ---------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._call(self._cut())

    def stall(self) -> None:
        """Accept connections and swallow what is sent: no answer, no error."""
        self._stalled = True

    def restore(self) -> None:
        """Serve again; connections opened or stalled meanwhile are reset."""
        if self._stalled:
            self._stalled = False
            self._call(self._cut())
        self._call(self._listen())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, coroutine: object) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        future.result(timeout=10)

    # -- the proxy, in its own loop ---------------------------------------------------------

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, LOOPBACK, self.port, reuse_address=True
            )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            transport = writer.transport
            # An abort sends a reset at once, as a vanished host's peer would see.
            transport.abort()
        self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._stalled:
            self._open.add(writer)  # held, unanswered, until restore() resets it
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(CHUNK):
                    if self._stalled:
                        continue  # swallowed: the peer waits for an answer that never comes
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                self._open.discard(sink)
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
