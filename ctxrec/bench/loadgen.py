"""A lean closed-loop HTTP/1.1 load generator for loopback benchmarks.

``concurrency`` keep-alive connections each send the next request as soon as the previous
answer is read, so at most ``concurrency`` requests are in flight. It speaks just enough
HTTP/1.1 (GET, ``Content-Length`` bodies) to stay cheap: the server under test shares the
machine's cores with it, and a heavy client (httpx costs about 1 ms of CPU per request)
would be measured as server latency.
"""
from __future__ import annotations

import asyncio
import time
from typing import List, Sequence, Tuple
from urllib.parse import urlsplit


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str) -> int:
    """Send one GET on an open connection; read the whole answer; return its status code."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode("latin-1"))
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length is None:
        raise ValueError(f"{path}: answer without Content-Length (chunked answers are not supported here)")
    await reader.readexactly(length)
    return status


async def load(base: str, paths: Sequence[str], concurrency: int) -> List[Tuple[float, bool]]:
    """GET every path in ``paths`` (in order, ``concurrency`` at a time) from ``base``.

    Returns:
        list of ``(seconds, ok)`` per request: time from sending the request to the last
        body byte read; ``ok`` is a 2xx answer (a transport error is not ok and reopens the
        connection).
    """
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    todo = list(reversed(paths))
    results: List[Tuple[float, bool]] = []

    async def worker() -> None:
        reader = writer = None
        while todo:
            path = todo.pop()
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                ok = 200 <= await _get(reader, writer, f"{host}:{port}", path) < 300
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                ok = False
                if writer is not None:
                    writer.close()
                reader = writer = None
            results.append((time.perf_counter() - t0, ok))
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank rule."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
