"""``ctxrec bench serve``: a bounded loopback load on the HTTP API.

A synthetic world with 100k items is ingested into the embedded store and a ContextGNN is
trained on it (one epoch: the figure is about serving, not quality). ``ctxrec serve`` then
runs in its own process on 127.0.0.1, and a client in this process sends ``requests``
requests per endpoint, ``concurrency`` at a time, after a warm-up: ``/recommend`` for random
users in random contexts (with and without reason sentences) and ``/items/{id}/related``.
Latency is measured at the client (request sent to body read); p50 / p99 and the error
count (any non-2xx or transport error) go to ``benchmarks/serve.json``.
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict
from urllib.parse import quote

from ctxrec.bench.loadgen import load, percentile
from ctxrec.bench.report import hash_files, split_facts, table, write_report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(folder: Path, items: int, users: int, seed: int = 0) -> Dict[str, object]:
    """World -> embedded store -> ContextGNN (1 epoch) saved in ``folder/model``; its facts, with the
    ids to draw requests from under ``ids``, the seed files' hash under ``data`` and the split under
    ``split``."""
    from ctxrec.datasets.synthetic import WorldConfig, generate_world
    from ctxrec.graph.export import export_pyg
    from ctxrec.graph.ingest import ingest
    from ctxrec.graph.stores import open_store
    from ctxrec.training.models import ContextGNN

    t0 = time.perf_counter()
    cfg = WorldConfig(n_users=users, n_items=items, n_places=12, sessions_per_user=10, items_per_session=5,
                      images=False, audio=False, days=120, seed=seed)
    files = generate_world(cfg).write(folder / "world")
    store = open_store("embedded", folder / "graph.db")
    try:
        ingest(store, files["interactions"], files["items"], files["context"])
        graph = export_pyg(store)
    finally:
        store.close()
    model = ContextGNN(hidden=64, features=(), train={"epochs": 1, "seed": seed}).fit(graph)
    model.save(folder / "model")
    return {"items": graph.num_items, "users": graph.num_users, "train_events": len(graph.train),
            "data": {"hash": hash_files([files[k] for k in ("interactions", "items", "context")]),
                     "source": f"synthetic world of {users} users, {items} items, seed {seed} (ctxrec.bench.serve)"},
            "split": split_facts(graph),
            "ids": {"users": [str(u) for u in graph.ids["user"]], "items": [str(i) for i in graph.ids["item"]],
                    "times": [str(t) for t in graph.ids["time"]], "places": [str(p) for p in graph.ids["place"]]},
            "prepare_s": time.perf_counter() - t0}


def run(items: int = 100_000, users: int = 1000, requests: int = 2000, concurrency: int = 16,
        out_dir: str = "benchmarks", seed: int = 0, repeats: int = 3) -> Dict[str, object]:
    """Prepare, serve, load; print the table; write ``benchmarks/serve.json``.

    Each endpoint gets ``repeats`` rounds of ``requests`` requests (the reason sentences one
    round of a tenth); the round with the median p99 is reported, with every round kept
    under ``rounds`` and the errors of all rounds summed.
    """
    rng = random.Random(seed)
    figures: Dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="ctxrec-serve-") as tmp:
        folder = Path(tmp)
        facts = prepare(folder, items, users, seed)
        ids, data, split = facts.pop("ids"), facts.pop("data"), facts.pop("split")
        port = _free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        log = open(folder / "server.log", "w")  # a file, not a pipe: a full pipe would stall the server
        server = subprocess.Popen([sys.executable, "-m", "ctxrec.cli", "serve", "--db", str(folder / "graph.db"),
                                   "--model-dir", str(folder / "model"), "--features", str(folder / "none"),
                                   "--port", str(port), "--no-access-log"], env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(base, server, folder / "server.log")

            def recommend(reasons: bool) -> str:
                return (f"/recommend?user={quote(rng.choice(ids['users']))}&time={quote(rng.choice(ids['times']))}"
                        f"&place={quote(rng.choice(ids['places']))}&k=10&reasons={str(reasons).lower()}")

            endpoints = {
                "/recommend": lambda: recommend(False),
                "/recommend (with reasons)": lambda: recommend(True),
                "/items/{id}/related": lambda: f"/items/{quote(rng.choice(ids['items']))}/related?k=10",
            }
            for name, make in endpoints.items():
                asyncio.run(load(base, [make() for _ in range(50)], concurrency))  # warm-up
                n = requests if "reasons" not in name else max(requests // 10, 50)  # ~40 store queries each
                rounds = []
                for _ in range(repeats if "reasons" not in name else 1):
                    t0 = time.perf_counter()
                    res = asyncio.run(load(base, [make() for _ in range(n)], concurrency))
                    wall = time.perf_counter() - t0
                    ms = [1000 * s for s, _ in res]
                    rounds.append({"p50_ms": percentile(ms, 0.5), "p99_ms": percentile(ms, 0.99),
                                   "errors": sum(not ok for _, ok in res), "requests": len(res),
                                   "requests_per_s": len(res) / wall})
                # the round with the median p99 is the headline; every round is kept, errors are summed
                middle = sorted(rounds, key=lambda r: r["p99_ms"])[len(rounds) // 2]
                figures[name] = {**middle, "errors": sum(r["errors"] for r in rounds), "rounds": rounds}
                print(f"{name}: {figures[name]}", flush=True)
            health = _health(base)
            figures["_batching"] = health["batching"]
            figures["_fast_lane"], figures["_ranking"] = health["fast_lane"], health["ranking"]
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    rows = [{"endpoint": k, **v} for k, v in figures.items() if not k.startswith("_")]
    print(table(rows, ["endpoint", "requests", "p50_ms", "p99_ms", "errors", "requests_per_s"]))
    figures["_setup"] = {**facts, "requests": requests, "concurrency": concurrency, "store": "embedded (LadybugDB)",
                         "model": "ContextGNN hidden 64, 1 epoch, no features",
                         "server": "ctxrec serve --no-access-log: one uvicorn process; plain /recommend requests "
                                   "answered before the router (fast lane), batched, ranked in a scoring process",
                         "client": "ctxrec.bench.loadgen (asyncio HTTP/1.1, keep-alive) in another process"}
    path = write_report("serve", figures, out_dir, command=f"ctxrec bench serve --items {items} --users {users} "
                                                            f"--requests {requests} --concurrency {concurrency} "
                                                            f"--repeats {repeats}", data=data, split=split)
    print(f"\nwritten to {path}")
    return figures


def _health(base: str) -> Dict[str, object]:
    import httpx2 as httpx

    return httpx.get(base + "/health", timeout=10).json()


def _wait(base: str, server: subprocess.Popen, log: Path, timeout: float = 600.0) -> None:
    import httpx2 as httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"ctxrec serve exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except Exception:  # noqa: BLE001 -- not up yet
            pass
        time.sleep(0.5)
    raise RuntimeError(f"ctxrec serve did not answer /health within {timeout:.0f} s")
