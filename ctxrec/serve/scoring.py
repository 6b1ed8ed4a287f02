"""Ranking a batch of requests: in the serving process, or in a scoring process of its own.

A ranking call is a few dozen torch and numpy calls around one pass over the item matrix.
Each of those calls gives up Python's GIL and must take it back from the event loop, which
holds it while it reads and writes HTTP; on a small machine the batch then takes twice as
long as it does alone (``ctxrec bench serve``). :class:`ScoringProcess` runs the ranking in a
child process with its own interpreter and GIL: the serving process sends each batch as
plain integers through a pipe and gets plain lists back.

Both take the same arguments and give the same answers (:func:`rank`).

Example:
    >>> scorer = ScoringProcess(model)                          # doctest: +SKIP
    >>> items, scores = scorer.rank([0, 1], [(-1, -1, []), (3, 0, [])], depth=10)  # doctest: +SKIP
    >>> scorer.close()                                          # doctest: +SKIP
"""
from __future__ import annotations

import threading
from typing import List, Sequence, Tuple

import torch

from ctxrec.serve.errors import ServiceError

#: one request's context as plain indices: (time slot or -1, place or -1, session items so far)
PlainContext = Tuple[int, int, List[int]]


def stack_contexts(contexts: Sequence[PlainContext]):
    """One batched ``Context`` from plain contexts (session items ``-1``-padded on the left).

    A few tensors per batch, not per request: each torch call gives up and takes back the GIL.
    """
    from ctxrec.training.recommender import Context

    width = max(len(items) for _, _, items in contexts)
    items = None
    if width:
        items = torch.tensor([[-1] * (width - len(row)) + row for _, _, row in contexts], dtype=torch.long)
    return Context(torch.tensor([t for t, _, _ in contexts], dtype=torch.long),
                   torch.tensor([p for _, p, _ in contexts], dtype=torch.long), items)


def rank(model, users: Sequence[int], contexts: Sequence[PlainContext], depth: int,
         filter_seen: bool = True) -> Tuple[List[List[int]], List[List[float]]]:
    """Top-``depth`` item indices and scores per request, as lists.

    Args:
        model: a fitted :class:`~ctxrec.training.recommender.Recommender`.
        users: user indices, one per request.
        contexts: one :data:`PlainContext` per request.
        depth: list length.
        filter_seen: leave out each user's training items (default: True).
    """
    items, scores = model.recommend(torch.tensor(list(users), dtype=torch.long), depth,
                                    context=stack_contexts(contexts), filter_seen=filter_seen)
    return items.tolist(), scores.tolist()


class InProcess:
    """Ranks in the calling thread (the default, and what tests and notebooks use)."""

    def __init__(self, model) -> None:
        self.model = model

    def rank(self, users, contexts, depth: int, filter_seen: bool = True):
        """As :func:`rank`."""
        return rank(self.model, users, contexts, depth, filter_seen)

    def stats(self) -> dict:
        return {"where": "thread"}

    def close(self) -> None:
        pass


class ScoringError(ServiceError):
    """The scoring process failed a batch, or is gone (HTTP 503: the fix is on the server)."""

    status, code = 503, "scoring_unavailable"


class ScoringProcess:
    """Ranks in a child process that holds its own copy of ``model`` (CPU models).

    The child is started with ``spawn`` (nothing forked from a threaded parent) and gets the
    model through its pipe; it answers one batch at a time, in order, and ends when
    :meth:`close` is called or the parent's end of the pipe closes (the parent exited or was
    killed). As with any spawned process, a script that starts one needs its code under
    ``if __name__ == "__main__":``.

    Args:
        model: a fitted recommender on the CPU; it must not change while it is served (the
            child keeps the copy it was given).
        threads (int): torch and BLAS threads in the child (default: 1).
        timeout (float): seconds to wait for the child to load the model (default: 120).

    Raises:
        ValueError: the model is not on the CPU.
        ScoringError: the child could not start or load the model (the message says why).
    """

    def __init__(self, model, threads: int = 1, timeout: float = 120.0) -> None:
        import multiprocessing

        first = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
        if first is not None and first.device.type != "cpu":
            raise ValueError(f"a scoring process serves CPU models; this one is on {first.device}")
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_child, args=(child, threads), daemon=True, name="ctxrec-scoring")
        self._process.start()
        child.close()
        self._lock = threading.Lock()  # one batch on the pipe at a time
        self.batches = 0
        try:  # the model goes through the pipe, not the start: a child that dies early then breaks it
            self._conn.send(model)
        except (BrokenPipeError, OSError):
            self.close()
            raise ScoringError(f"the scoring process ended as it started (exit code {self._process.exitcode}); a "
                               "script that starts one needs its code under `if __name__ == '__main__':` (the "
                               "process imports the script again)") from None
        if not self._conn.poll(timeout):
            self.close()
            raise ScoringError(f"the scoring process did not load the model within {timeout:.0f} s")
        status, payload = self._recv()
        if status != "ready":
            self.close()
            raise ScoringError(f"the scoring process could not start: {payload}")

    def rank(self, users, contexts, depth: int, filter_seen: bool = True):
        """As :func:`rank`, computed in the child."""
        with self._lock:
            try:
                self._conn.send((list(users), list(contexts), int(depth), bool(filter_seen)))
            except (BrokenPipeError, OSError) as e:
                raise ScoringError(f"the scoring process is gone ({e}); restart the server") from None
            status, payload = self._recv()
            self.batches += 1
        if status != "ok":
            raise ScoringError(f"the scoring process failed a batch: {payload}")
        return payload

    def _recv(self):
        try:
            return self._conn.recv()
        except (EOFError, OSError) as e:
            self._process.join(timeout=1)
            raise ScoringError(f"the scoring process is gone (exit code {self._process.exitcode}: "
                               f"{e or 'pipe closed'}); restart the server") from None

    def stats(self) -> dict:
        """Where batches are ranked, the child's pid, whether it is alive, batches so far."""
        return {"where": "process", "pid": self._process.pid, "alive": self._process.is_alive(),
                "batches": self.batches}

    def close(self) -> None:
        """Stop the child (it finishes the batch it is on)."""
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


def _child(conn, threads: int) -> None:
    """The scoring process: take the model, warm up, then answer batches until told to stop."""
    try:
        model = conn.recv()
        torch.set_num_threads(threads)
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")
        if isinstance(model, torch.nn.Module):
            model.eval()
        rank(model, [0], [(-1, -1, [])], 1)  # builds the model's caches (node vectors, item matrix)
    except Exception as e:  # noqa: BLE001 -- reported to the parent, which raises it
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        try:
            conn.send(("ok", rank(model, *message)))
        except Exception as e:  # noqa: BLE001 -- one failed batch; the parent raises it for that batch
            conn.send(("error", f"{type(e).__name__}: {e}"))
