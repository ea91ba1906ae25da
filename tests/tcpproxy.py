"""A TCP proxy for the test world: loopback only, one upstream, bytes passed through untouched
(TLS stays end to end), every accepted connection counted, and optionally a fixed delay added
to each direction (10 ms each way = 20 ms round trip) without limiting throughput: a chunk read
at time t is written at t + delay, chunks keep their order, later chunks are not held behind
earlier ones' delays. Runs its own asyncio loop in a thread; stopped by `stop()` (and by
itself after `lifetime` seconds)."""

from __future__ import annotations

import asyncio
import threading
import time


class TcpProxy:
    def __init__(self, upstream: str, delay: float = 0.0, lifetime: float = 600.0):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.delay = delay
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._tasks: set[asyncio.Task] = set()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started, lifetime), daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the TCP proxy did not start")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, started: threading.Event, lifetime: float):
        asyncio.set_event_loop(self._loop)

        async def main():
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            started.set()
            self._loop.call_later(lifetime, self._close)
            try:
                await self._server.serve_forever()
            except asyncio.CancelledError:
                pass

        self._loop.run_until_complete(main())
        for t in list(self._tasks):
            t.cancel()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    def _close(self):
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()

    async def _accept(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter):
        self.connections += 1
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 10)
        except (OSError, asyncio.TimeoutError):
            cw.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(self._pipe(cr, uw), self._pipe(ur, cw))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in (cw, uw):
                w.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        if self.delay <= 0:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            return
        # Latency, not bandwidth: a queue of (due time, bytes) drained by a writer.
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(65536)
                queue.put_nowait((time.monotonic() + self.delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()

    def stop(self):
        if self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(self._close)
        except RuntimeError:
            return
        self._thread.join(5)
