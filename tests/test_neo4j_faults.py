"""Neo4j faults (issue #8, part 3): the server stops in the middle of ``ctxrec ingest``.

The test starts its own Neo4j (``scripts/neo4j.sh`` on a free port and a temporary data
folder; the shared server on 7687 is never touched), stops it while the CLI is writing, and
checks what the user sees: a clear error naming the server and what to do, a bounded number
of retries in a bounded time, no traceback. Reads against the stopped server fail as clearly
and fast. After a restart the store holds only whole batches of the clean graph, and a rerun
of the same command makes it equal to a clean ingestion.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import _unavailable, write_board
from graph_dump import assert_part_of, assert_same, dump, rows

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "neo4j.sh"
PASSWORD = "ctxrec-fault-test"
#: C1-only JIT: about half the start-up CPU; fine for the small graphs here
FAST_JVM = ("-Xms256m -Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError "
            "-Dio.netty.tryReflectionSetAccessible=true --add-opens=java.base/java.nio=ALL-UNNAMED "
            "--add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED "
            "--add-opens=java.base/java.lang=ALL-UNNAMED")
#: the driver's retry time the test expects (Neo4jStore's default, see its docstring)
RETRY_TIME = 5.0


def _free_port(preferred: int = 7697) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnServer:
    """A Neo4j server of this test module only: its own port, data folder and password."""

    def __init__(self, data: Path):
        self.port, self.data = _free_port(), data
        self.uri = f"bolt://127.0.0.1:{self.port}"

    def _sh(self, command: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "NEO4J_JAVA_OPTS": os.environ.get("NEO4J_JAVA_OPTS", FAST_JVM)}
        return subprocess.run(["bash", str(SCRIPT), command, "--port", str(self.port), "--data", str(self.data),
                               "--password", PASSWORD], env=env, capture_output=True, text=True, timeout=400)

    def start(self) -> float:
        t0 = time.monotonic()
        done = self._sh("start")
        if done.returncode != 0:
            _unavailable(f"scripts/neo4j.sh could not start a server on port {self.port}: "
                         f"{(done.stdout + done.stderr)[-1500:]}")
        return time.monotonic() - t0

    def stop(self) -> None:
        done = self._sh("stop")
        assert done.returncode == 0, done.stderr

    def open(self, **kw):
        from ctxrec.graph.stores import open_store

        return open_store("neo4j", uri=self.uri, user="neo4j", password=PASSWORD, **kw)

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "NEO4J_MAX_RETRY_TIME"}  # the default is measured
        return {**env, "HF_HUB_OFFLINE": "1", "NEO4J_USER": "neo4j", "NEO4J_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    server = OwnServer(tmp_path_factory.mktemp("neo4j-fault"))
    print(f"own Neo4j on port {server.port} started in {server.start():.1f} s")
    try:
        yield server
    finally:
        server.stop()


def _ctxrec(args: list, env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ctxrec.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.neo4j
@pytest.mark.slow
def test_server_stopped_mid_ingest_fails_clearly_then_rerun_equals_clean(own_server, tmp_path):
    from ctxrec.graph.ingest import ingest
    from ctxrec.graph.stores import StoreUnavailable, open_store

    files = write_board(tmp_path / "data", context_board=True, n_users=150, n_items=100)
    t_test = time.monotonic()
    # the clean run goes to a fresh embedded store: both stores read back the same dump
    # (tests/stores), and it keeps the reference away from the server under test
    with open_store("embedded", tmp_path / "clean") as store:
        ingest(store, files["interactions"], files["items"], files["context"])
        clean = dump(store)
    with own_server.open() as store:
        store.clear()
    ingest_args = ["ingest", "--store", "neo4j", "--uri", own_server.uri, "--interactions", str(files["interactions"]),
                   "--items", str(files["items"]), "--context", str(files["context"]), "--batch-size", "100"]
    watcher = own_server.open(max_retry_time=1)  # stays open across the stop: a read on it must fail too
    proc = _ctxrec(ingest_args, own_server.env())
    deadline = time.monotonic() + 120
    while watcher.count_edges("INTERACTED") == 0:  # midway: nodes written, edges begun
        assert proc.poll() is None, f"ingest ended before it was midway: {proc.communicate()}"
        assert time.monotonic() < deadline, "ingest did not reach the INTERACTED edges in 120 s"
        time.sleep(0.1)
    t_fault = time.monotonic()
    print(f"clean ingest and the CLI run up to midway took {t_fault - t_test:.1f} s")
    own_server.stop()
    out, err = proc.communicate(timeout=120)
    time_to_fail = time.monotonic() - t_fault
    retries = err.count("will be retried")
    print(f"ingest: rc {proc.returncode}, failed {time_to_fail:.1f} s after the stop began, {retries} retries logged")
    assert proc.returncode == 2, f"the ingest did not fail (was the stop too late?):\n{out}\n{err[-3000:]}"
    assert "Traceback" not in err
    assert re.search(rf"error: lost Neo4j at {re.escape(own_server.uri)} during a (write|read) \(.+\); gave up after "
                     rf"retrying for [0-9.]+ s \(max_retry_time=5 s\)", err), err[-3000:]
    assert "rerun the same command" in err and "scripts/neo4j.sh start" in err
    # the driver waits 1, 2, 4 s (+-20%) while less than max_retry_time has passed: at most 3 retries per call
    assert time_to_fail < 3 + RETRY_TIME + 4 * 1.2 + 10, time_to_fail  # + the server's own shutdown, + slack

    # reads against the stopped server: an open store and a fresh one, in-process and through the CLI
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable, match=rf"lost Neo4j at {re.escape(own_server.uri)} during a read"):
        watcher.read_nodes("Item")
    open_read = time.monotonic() - t0
    watcher.close()
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable, match=rf"cannot reach Neo4j at {re.escape(own_server.uri)} after 3 tries "
                                               r"\(.*\); is the server running\? \(scripts/neo4j.sh start\)"):
        own_server.open(read_only=True)
    fresh_open = time.monotonic() - t0
    t0 = time.monotonic()
    train = _ctxrec(["train", "--store", "neo4j", "--uri", own_server.uri, "--out", str(tmp_path / "model")],
                    own_server.env())
    _, train_err = train.communicate(timeout=120)
    cli_read = time.monotonic() - t0
    print(f"read on an open store failed in {open_read:.1f} s, a fresh open in {fresh_open:.1f} s, "
          f"`ctxrec train` (process start included) in {cli_read:.1f} s")
    assert train.returncode == 2 and "Traceback" not in train_err, train_err[-3000:]
    assert f"error: cannot reach Neo4j at {own_server.uri} after 3 tries" in train_err
    assert open_read < 1 + 2 * 1.2 + 3 and fresh_open < 5  # max_retry_time=1: two retries, 1 and 2 s

    # restart: only whole batches of the clean graph are there; the same command completes it
    print(f"restarted in {own_server.start():.1f} s")
    with own_server.open() as store:
        part = dump(store)
    assert_part_of(part, clean)
    assert 0 < rows(part) < rows(clean), f"the stop was not midway: {rows(part)} of {rows(clean)} rows"
    t0 = time.monotonic()
    out, err = _ctxrec(ingest_args, own_server.env()).communicate(timeout=300)
    print(f"the rerun took {time.monotonic() - t0:.1f} s")
    assert "Traceback" not in err and "store now holds" in out, err[-3000:]
    with own_server.open() as store:
        assert_same(dump(store), clean)
        store.clear()
    print(f"rows before the rerun {rows(part)} of {rows(clean)}; after it all {rows(clean)}, 0 lost")


def test_retry_time_is_checked_before_connecting(monkeypatch):
    pytest.importorskip("neo4j", reason="the neo4j driver is not installed (pip install ctxrec[neo4j])")
    from ctxrec.graph.stores.neo4j import Neo4jStore

    for bad in (-1, float("inf"), float("nan"), "soon"):
        with pytest.raises(ValueError, match=r"max_retry_time \(or \$NEO4J_MAX_RETRY_TIME\) must be seconds >= 0"):
            Neo4jStore(uri="bolt://127.0.0.1:1", max_retry_time=bad)
    monkeypatch.setenv("NEO4J_MAX_RETRY_TIME", "-3")
    with pytest.raises(ValueError, match=r"got '-3'"):
        Neo4jStore(uri="bolt://127.0.0.1:1")
