"""Dynamic batching: concurrent requests that arrive while a batch is being answered are
answered together by the next one.

No request waits for a batch to fill: an idle batcher starts at once on what it has. Under
load the requests queue up behind the running batch and leave as one batch, so the cost of
a pass over the whole item matrix is shared by every request in it.

Example:
    >>> batcher = Batcher(service.recommend_many, max_batch=64)      # doctest: +SKIP
    >>> answer = await batcher(RecRequest("u0001", k=10))             # doctest: +SKIP
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Sequence, Tuple


class Batcher:
    """Runs ``fn(list of requests) -> list of answers`` on batches, in one worker thread.

    Args:
        fn: answers a batch, one answer per request in order; an answer that is an
            exception is raised to that request's caller only.
        max_batch (int): most requests per call (default: 64).
    """

    def __init__(self, fn: Callable[[Sequence[Any]], List[Any]], max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.fn, self.max_batch = fn, max_batch
        self._pending: List[Tuple[Any, asyncio.Future]] = []
        self._running = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctxrec-batch")
        self.batches = 0  # calls of fn so far, requests they answered and seconds they took (for benchmarks)
        self.requests = 0
        self.busy_s = 0.0
        self.compute_s = 0.0  # of which inside fn

    async def __call__(self, request: Any) -> Any:
        """The answer to ``request`` (raises what ``fn`` answered for it, or what ``fn`` raised)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((request, future))
        if not self._running:
            self._running = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                started = time.perf_counter()
                try:
                    answers = await loop.run_in_executor(self._pool, self._timed, [r for r, _ in batch])
                    if len(answers) != len(batch):
                        raise RuntimeError(f"the batch function gave {len(answers)} answers for {len(batch)} requests")
                except Exception as e:  # noqa: BLE001 -- every caller of the batch gets the error
                    answers = [e] * len(batch)
                self.batches += 1
                self.requests += len(batch)
                self.busy_s += time.perf_counter() - started
                for (_, future), answer in zip(batch, answers):
                    if future.done():  # the caller went away (client disconnected)
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._running = False

    def _timed(self, requests: List[Any]) -> List[Any]:
        started = time.perf_counter()
        try:
            return self.fn(requests)
        finally:
            self.compute_s += time.perf_counter() - started

    def close(self) -> None:
        """Stop the worker thread (pending batches finish first)."""
        self._pool.shutdown(wait=True)

    def stats(self) -> dict:
        """Batches so far, requests they answered, mean batch size and seconds spent answering."""
        return {"batches": self.batches, "requests": self.requests, "busy_s": round(self.busy_s, 3),
                "compute_s": round(self.compute_s, 3),
                "mean_batch": round(self.requests / self.batches, 2) if self.batches else 0.0}
