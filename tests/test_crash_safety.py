"""Crash safety (issue #8, part 2), with real processes and real SIGKILLs.

Ingestion runs in a subprocess that touches a marker file when its K-th write statement
starts (a hook on the store's statement runner; nothing else changes) and is SIGKILLed as
soon as the marker appears, so the kill lands inside or right after that write. The store
must then open, hold a part of the graph, and after a rerun of ``ctxrec ingest`` equal a
clean ingestion into a fresh store: every node's label, id and properties and every edge's
type, endpoints and properties. Training is killed after an epoch's checkpoint and while a
checkpoint is half-written; the rerun resumes from the last whole checkpoint and ends with
the weights of an uninterrupted run.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_board
from graph_dump import assert_part_of, assert_same, dump, rows

#: rows per write transaction: small, so the test data make dozens of write statements
BATCH = 500
#: kill points (write statements counted from the start of each run): in the Session node
#: batches of a fresh store, then in the INTERACTED edge batches of the rerun; for the
#: embedded store a third run is killed as it closes (LadybugDB checkpoints its WAL then)
KILLS = (4, 12)
AT_CLOSE = 0

INGEST_CHILD = r"""
import sys
from pathlib import Path

kind, where, data, kill_at, mark, batch = sys.argv[1:7]
data, kill_at, mark = Path(data), int(kill_at), Path(mark)
from ctxrec.graph.ingest import ingest
from ctxrec.graph.stores import open_store
from ctxrec.graph.stores.ladybug import LadybugStore
from ctxrec.graph.stores.neo4j import Neo4jStore

writes = 0

def hooked(run, is_write):
    def wrapper(self, cypher, *args, **kw):
        global writes
        if is_write(cypher, *args, **kw):
            writes += 1
            if writes == kill_at:
                mark.write_text(cypher)
        return run(self, cypher, *args, **kw)
    return wrapper

if kind == "embedded":  # LadybugDB writes are COPY / MERGE / SET statements over an Arrow table
    LadybugStore._run = hooked(LadybugStore._run, lambda c, params=None, fetch=None: bool(params) and "t" in params
                               and ("COPY " in c or "MERGE " in c or " SET " in c))
    if kill_at == 0:
        close = LadybugStore._close
        LadybugStore._close = lambda self: (mark.write_text("close"), close(self))
    store = open_store("embedded", where)
else:
    Neo4jStore._run = hooked(Neo4jStore._run, lambda c, params=None, write=False, fetch=None: write and "UNWIND" in c)
    store = open_store("neo4j", uri=where)
with store:
    ingest(store, data / "interactions.csv", data / "items.csv", data / "context.csv", batch_size=int(batch))
print("finished after", writes, "writes")
"""


def _env(**extra) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def _kill_when(cmd: list, mark: Path, env: dict, timeout: float = 120.0) -> None:
    """Run ``cmd``; SIGKILL it the moment ``mark`` appears (it must appear before the process ends)."""
    mark.unlink(missing_ok=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not mark.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended (rc {proc.returncode}) before the kill point {mark.name}:\n{out}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no kill point {mark.name} within {timeout} s")
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def _crash_and_rerun(kind: str, where: str, data: dict, open_it, clean: dict, tmp: Path, env: dict,
                     kills=KILLS) -> dict:
    """Kill an ingestion at each of ``kills``, check the store holds part of the clean graph, rerun the CLI."""
    partial = []
    for kill_at in kills:
        _kill_when([sys.executable, "-c", INGEST_CHILD, kind, where, str(tmp / "data"), str(kill_at),
                    str(tmp / f"kill-{kill_at}"), str(BATCH)], tmp / f"kill-{kill_at}", env)
        with open_it() as store:  # opens after a SIGKILL: no lock or half-written batch stops it
            part = dump(store)
        assert_part_of(part, clean)
        partial.append(rows(part))
    assert 0 < partial[0] < partial[1] < rows(clean), f"the kills were not midway: {partial} of {rows(clean)} rows"
    assert partial[2:] in ([], [rows(clean)])  # killed at close: everything had been written
    where_opt = ["--db", where] if kind == "embedded" else ["--store", "neo4j", "--uri", where]
    run = subprocess.run([sys.executable, "-m", "ctxrec.cli", "ingest", "--interactions", str(data["interactions"]),
                          "--items", str(data["items"]), "--context", str(data["context"]),
                          "--batch-size", str(BATCH), *where_opt], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    with open_it() as store:
        return dump(store)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crash")
    return tmp, write_board(tmp / "data", context_board=True, n_users=150, n_items=100)


@pytest.mark.slow
def test_embedded_ingest_killed_midway_then_rerun_equals_clean(board):
    from ctxrec.graph.ingest import ingest
    from ctxrec.graph.stores import open_store

    tmp, data = board
    with open_store("embedded", tmp / "clean") as store:
        ingest(store, data["interactions"], data["items"], data["context"], batch_size=BATCH)
        clean = dump(store)
    where = tmp / "crashed"
    got = _crash_and_rerun("embedded", str(where), data, lambda: open_store("embedded", where), clean, tmp, _env(),
                           kills=KILLS + (AT_CLOSE,))
    assert_same(got, clean)
    assert sorted(p.name for p in where.iterdir()) == ["graph.lbug"]  # no WAL, shadow or lock file left


@pytest.mark.slow
@pytest.mark.neo4j
def test_neo4j_ingest_killed_midway_then_rerun_equals_clean(board, neo4j_server):
    from ctxrec.graph.ingest import ingest
    from ctxrec.graph.stores import open_store

    tmp, data = board
    open_it = lambda: open_store("neo4j", **neo4j_server)  # noqa: E731
    with open_it() as store:
        store.clear()
        ingest(store, data["interactions"], data["items"], data["context"], batch_size=BATCH)
        clean = dump(store)
        store.clear()
    env = _env(NEO4J_USER=neo4j_server["user"], NEO4J_PASSWORD=neo4j_server["password"])
    got = _crash_and_rerun("neo4j", neo4j_server["uri"], data, open_it, clean, tmp, env)
    assert_same(got, clean)
    with open_it() as store:
        store.clear()


def test_store_held_by_a_live_process_says_so(tmp_path):
    """A store held by a running process gives a clear error (and the CLI no traceback); once that
    process is SIGKILLed its OS lock is gone and the store opens, with no file to delete."""
    from ctxrec.graph.stores import StoreUnavailable, open_store

    db = tmp_path / "graph.db"
    open_store("embedded", db).close()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from ctxrec.graph.stores import open_store; "
                               "s = open_store('embedded', sys.argv[1]); print('open', flush=True); time.sleep(120)",
                               str(db)], env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreUnavailable, match=r"open for writing in another process \(.*PID.*\); close that"):
            open_store("embedded", db)
        files = write_board(tmp_path / "data", context_board=False, n_users=4, n_items=8)
        run = subprocess.run([sys.executable, "-m", "ctxrec.cli", "ingest", "--interactions", str(files["interactions"]),
                              "--items", str(files["items"]), "--db", str(db)], env=_env(), capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
        assert "error: the embedded store" in run.stderr and "another process" in run.stderr
    finally:
        holder.kill()
        holder.wait()
    with open_store("embedded", db) as store:
        assert store.counts()["User"] == 0


# ------------------------------------------------------------------------------------ training
TRAIN_CHILD = r"""
import json, sys, time
from pathlib import Path

data, ckpt, epochs, mode, at, mark = sys.argv[1:7]
epochs, at, mark = int(epochs), int(at), Path(mark)
import safetensors.torch
from ctxrec.graph.build import build_graph
from ctxrec.graph.export import to_rec_graph
from ctxrec.training.models import ContextGNN
from ctxrec.training.trainer import TrainConfig

save_file, write_text = safetensors.torch.save_file, Path.write_text

def before_json(self, text, *args, **kw):  # killed after epoch `at`'s weights landed, before its JSON copy
    if self.name == "checkpoint.json.tmp" and json.loads(text)["epoch"] == at:
        mark.touch()
        time.sleep(300)
    return write_text(self, text, *args, **kw)

def half_written(tensors, path, metadata=None):  # killed while epoch `at`'s checkpoint is being written
    save_file(tensors, path, metadata=metadata)
    if json.loads((metadata or {}).get("ctxrec.meta", "{}")).get("epoch") == at:
        size = Path(path).stat().st_size
        with open(path, "r+b") as f:
            f.truncate(size // 2)
        mark.touch()
        time.sleep(300)

if mode == "json":
    Path.write_text = before_json
else:
    safetensors.torch.save_file = half_written
d = Path(data)
graph = to_rec_graph(build_graph(d / "interactions.csv", d / "items.csv", d / "context.csv").tables)
cfg = TrainConfig(epochs=epochs, patience=99, seed=1, lr=0.02, checkpoint_dir=ckpt)
ContextGNN(hidden=8, features=(), dropout=0.1, train=cfg).fit(graph)
"""


def _gnn(epochs: int, ckpt=None):
    from ctxrec.training.models import ContextGNN
    from ctxrec.training.trainer import TrainConfig

    cfg = TrainConfig(epochs=epochs, patience=99, seed=1, lr=0.02, checkpoint_dir=ckpt)
    return ContextGNN(hidden=8, features=(), dropout=0.1, train=cfg)


@pytest.mark.slow
def test_training_killed_after_a_checkpoint_and_mid_write_resumes_to_the_same_weights(tmp_path):
    import json

    import torch

    from ctxrec.graph.build import build_graph
    from ctxrec.graph.export import to_rec_graph

    files = write_board(tmp_path / "data", context_board=True)
    graph = to_rec_graph(build_graph(files["interactions"], files["items"], files["context"]).tables)
    epochs, ckpt = 5, tmp_path / "ckpt"
    straight = _gnn(epochs).fit(graph)
    child = [sys.executable, "-c", TRAIN_CHILD, str(tmp_path / "data"), str(ckpt), str(epochs)]
    # kill 1: epoch 1's checkpoint has landed, its readable JSON copy not yet
    _kill_when(child + ["json", "1", str(tmp_path / "mark-a")], tmp_path / "mark-a", _env())
    assert json.loads((ckpt / "checkpoint.json").read_text())["epoch"] == 0  # the copy lags the checkpoint
    # kill 2: the rerun resumes from epoch 2 and dies with epoch 3's checkpoint half-written
    _kill_when(child + ["during", "3", str(tmp_path / "mark-b")], tmp_path / "mark-b", _env())
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    assert meta["epoch"] == 2 and meta["history"]["resumed_from"] == 2
    tmp = ckpt / "checkpoint.safetensors.tmp"
    assert tmp.exists() and 0 < tmp.stat().st_size < (ckpt / "checkpoint.safetensors").stat().st_size
    resumed = _gnn(epochs, str(ckpt)).fit(graph)
    assert resumed.history.resumed_from == 3  # the last whole checkpoint (epoch 2), not the half-written one
    assert len(resumed.history.loss) == epochs and resumed.history.best_epoch == straight.history.best_epoch
    assert resumed.history.loss == pytest.approx(straight.history.loss, rel=1e-5)
    # the same seed and the same CPU kernels: equal up to float32 rounding of the summation order
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)


def test_damaged_checkpoint_is_refused_not_loaded(tmp_path, context_board):
    """A checkpoint file cut short (or emptied) is refused with a clear error; a stray temp file is ignored."""
    from ctxrec.training.checkpoint import WEIGHTS

    ckpt = tmp_path / "ckpt"
    _gnn(1, str(ckpt)).fit(context_board)
    good = (ckpt / WEIGHTS).read_bytes()
    (ckpt / (WEIGHTS + ".tmp")).write_bytes(good[: len(good) // 3])  # a kill mid-write leaves this
    assert _gnn(2, str(ckpt)).fit(context_board).history.resumed_from == 1
    for damaged in (good[: len(good) // 2], b"", good[:-1]):
        (ckpt / WEIGHTS).write_bytes(damaged)
        with pytest.raises(ValueError, match=r"checkpoint .* cannot be read .*delete the folder to start over"):
            _gnn(3, str(ckpt)).fit(context_board)
