"""Data-parallel training under torchrun: two CPU processes (gloo) match one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from ctxrec.training.distributed import init_distributed

ROOT = Path(__file__).resolve().parent.parent
needs_dist = pytest.mark.skipif(not dist.is_available(), reason="this PyTorch build has no torch.distributed")


def _torchrun(nproc: int, out: Path, *args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    if sys.platform.startswith("linux"):  # gloo otherwise binds to whatever the hostname resolves to
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "ctxrec.training", *args, "--out", str(out)]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{' '.join(cmd)}\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr[-4000:]}"
    return json.loads((out / "metrics.json").read_text())


@needs_dist
def test_two_processes_match_one(tmp_path):
    """ContextGNN (dropout 0) trained by 2 gloo processes matches 1 process.

    Every process draws the same global batch order and negatives and takes the shard
    ``b[rank::2]``; the trainer weights each shard's mean loss by its share of the batch, so
    DDP's average of the shards' gradients is the whole batch's gradient. The batch size is
    ``len(train) - 1``, which makes the shards of the first batch unequal (411 / 410 events
    on the tiny world) and leaves the second process an empty shard in the last batch.

    Tolerances, with what was measured (torch 2.11 CPU, 4 epochs): every weight
    max |Δ| < 1e-4 (measured ~2e-6: float rounding of the all-reduce), per-epoch loss
    |Δ| < 1e-4 (~2e-6), validation NDCG@20 |Δ| < 0.01 (0.0). One tensor is left out:
    the last layer's item LayerNorm bias adds the same vector to every item, so the loss
    does not depend on it and its gradient is rounding noise (~3e-8), which Adam's
    normalisation turns into lr-sized steps in a noise-chosen direction (0.026 apart); it
    shifts all of a query's scores equally and changes no ranking.
    """
    from ctxrec.training.__main__ import synthetic_graph

    n = len(synthetic_graph("tiny", 0).train)
    args = ("--synthetic", "tiny", "--seed", "0", "--model", "context_gnn", "--dropout", "0",
            "--epochs", "4", "--batch-size", str(n - 1))
    two = _torchrun(2, tmp_path / "two", *args)
    one = _torchrun(1, tmp_path / "one", *args)

    assert (two["world_size"], two["backend"], one["world_size"]) == (2, "gloo", 1)
    assert two["epochs_run"] == one["epochs_run"] == 4
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["manifest.json", "metrics.json",
                                                                    "weights.safetensors"]
    assert abs(two["val"]["ndcg@20"] - one["val"]["ndcg@20"]) < 0.01
    assert two["history"]["val"] == pytest.approx(one["history"]["val"], abs=0.01)
    assert two["history"]["loss"] == pytest.approx(one["history"]["loss"], abs=1e-4)

    from safetensors.torch import load_file

    w1, w2 = (load_file(str(tmp_path / d / "weights.safetensors")) for d in ("one", "two"))
    assert w1.keys() == w2.keys()
    free = {f"norms.{max(int(k.split('.')[1]) for k in w1 if k.startswith('norms.'))}.item.bias"}
    assert free <= w1.keys()
    diff = {k: float((w1[k] - w2[k]).abs().max()) for k in w1 if k not in free and w1[k].numel()}
    worst = max(diff, key=diff.get)
    assert diff[worst] < 1e-4, f"{worst} differs by {diff[worst]:.2e}"


def test_init_distributed_outside_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    rank, world, device = init_distributed()
    assert (rank, world) == (0, 1) and device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert not (dist.is_available() and dist.is_initialized())


@needs_dist
def test_init_distributed_errors(monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of"):
        init_distributed("mpi")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for var in ("LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match=r"\['LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'\] are not"):
        init_distributed()
    if not torch.cuda.is_available():
        for var, value in (("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")):
            monkeypatch.setenv(var, value)
        with pytest.raises(RuntimeError, match="'nccl' needs CUDA"):
            init_distributed("nccl")
