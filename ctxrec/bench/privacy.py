"""``ctxrec bench privacy``: what Gaussian noise on exported user embeddings costs in NDCG.

One ContextGNN is trained on a small synthetic world. For each epsilon it is exported with
``export_bundle(..., dp=(epsilon, delta))``; the noised user vectors are read back from the
bundle (``graph/nodes/user/emb.npy``) and the test split is scored from them with the model's
own query network and item vectors (full ranking, train and val items masked, the metrics
of :meth:`Recommender.evaluate`). NDCG@20 is the mean over noise seeds. Rows: no noise, clip
only, user vectors zeroed (the floor: context, items and item bias alone), then each epsilon
with the classic and the analytic calibration. Figures go to
``benchmarks/privacy.json``.
"""
from __future__ import annotations

import math
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ctxrec.bench.report import hash_world, split_facts, table, write_report
from ctxrec.training.recommender import Context, Recommender


class UserVectorScorer(Recommender):
    """Scores of a fitted ContextGNN with its user vectors replaced by ``users`` [num_users, d]
    (e.g. the noised ones of a DP bundle); everything else is the model's."""

    name = "ContextGNN (given user vectors)"

    def __init__(self, model, users: np.ndarray) -> None:
        self.model, self.graph = model, model.graph
        with torch.no_grad():
            h = dict(model.encode())
            h["user"] = torch.as_tensor(np.asarray(users, dtype=np.float32), device=h["user"].device)
            self.h = h
            self.items = model._items(h["item"], torch.arange(h["item"].size(0), device=h["item"].device))

    def fit(self, graph) -> "UserVectorScorer":
        return self

    @torch.no_grad()
    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        return self.model.query(self.h, users.to(self.items.device), context) @ self.items.T


def run(epsilons: Sequence[float] = (8, 4, 1, 0.5), delta: float = 1e-5, clip: Optional[float] = None,
        noise_seeds: Sequence[int] = (0, 1, 2), world: str = "small", seed: int = 0, epochs: int = 40,
        hidden: int = 64, mechanisms: Sequence[str] = ("classic", "analytic"),
        out_dir: str = "benchmarks") -> Dict[str, object]:
    """Train once, export with each (mechanism, epsilon, noise seed), score; print the table; write ``privacy.json``.

    Args:
        clip: the clip norm C (default: ``sqrt(hidden)``, the norm of a LayerNorm output with
            unit gain: a choice that does not look at the data).
    """
    from ctxrec.bundle import export_bundle, read_graph_arrays
    from ctxrec.datasets.graphs import synthetic_graph
    from ctxrec.privacy import GaussianMechanism, PrivacyWarning, clip_rows
    from ctxrec.training.models import make_model
    from ctxrec.training.trainer import TrainConfig

    clip_arg, clip = clip, float(clip) if clip is not None else math.sqrt(hidden)
    t0 = time.perf_counter()
    w, graph = synthetic_graph(world, seed=seed)
    model = make_model("context_gnn", hidden=hidden, features=(),
                       train=TrainConfig(epochs=epochs, seed=seed, device="cpu")).fit(graph)
    model.eval()
    train_s = time.perf_counter() - t0
    clean = model.encode()["user"].detach().cpu().numpy()
    norms = np.linalg.norm(clean, axis=1)
    rows: List[Dict[str, object]] = []

    def ndcg(users: np.ndarray) -> float:
        return UserVectorScorer(model, users).evaluate("test", ks=(20,))["ndcg@20"]

    rows.append({"setting": "no noise", "epsilon": "", "sigma": 0.0, "ndcg@20": ndcg(clean), "±": 0.0})
    rows.append({"setting": "clip only", "epsilon": "", "sigma": 0.0, "ndcg@20": ndcg(clip_rows(clean, clip)),
                 "±": 0.0})
    rows.append({"setting": "user vectors zeroed", "epsilon": "", "sigma": 0.0, "ndcg@20": ndcg(0 * clean),
                 "±": 0.0})  # the floor: context, items and bias alone
    with tempfile.TemporaryDirectory(prefix="ctxrec-dp-") as tmp:
        for mech_name in mechanisms:
            for eps in epsilons:
                scores, sigma = [], 0.0
                for s in noise_seeds:
                    mech = GaussianMechanism(float(eps), delta, clip=clip, mechanism=mech_name, seed=s)
                    with warnings.catch_warnings():  # the table's 'proven' column says it
                        warnings.simplefilter("ignore", PrivacyWarning)
                        path = export_bundle(model, graph, Path(tmp) / "bundle", dp=mech)
                    noised = read_graph_arrays(path / "graph").vectors["user"]["emb"]
                    scores.append(ndcg(noised))
                    sigma = mech.sigma
                rows.append({"setting": mech_name, "epsilon": float(eps), "sigma": sigma,
                             "proven": mech.calibration_proven, "ndcg@20": statistics.mean(scores),
                             "±": statistics.stdev(scores) if len(scores) > 1 else 0.0, "per_seed": scores})
                print(f"{mech_name} epsilon {eps}: sigma {sigma:.3g}, ndcg@20 {rows[-1]['ndcg@20']:.4f}", flush=True)
    print(table(rows, ["setting", "epsilon", "sigma", "proven", "ndcg@20", "±"]))
    figures: Dict[str, object] = {
        "rows": rows,
        "_setup": {"world": world, "world_seed": seed, "model": "context_gnn", "hidden": hidden, "features": [],
                   "epochs": epochs, "train_s": train_s, "delta": delta, "clip_norm": clip,
                   "user_norm_median": float(np.median(norms)), "noise_seeds": list(noise_seeds),
                   "sensitivity": "2C (one user's vector replaced by another of norm <= C)",
                   "scoring": "test split, full ranking, train+val items masked, the model's query MLP and item "
                              "vectors with the bundle's noised user vectors"},
    }
    eps_arg = ",".join(_number(e) for e in epsilons)
    command = (f"ctxrec bench privacy --epsilons {eps_arg} --delta {_number(delta)} --world {world} --epochs {epochs} "
               f"--noise-seeds {','.join(map(str, noise_seeds))}"
               + (f" --clip {_number(clip_arg)}" if clip_arg is not None else ""))
    path = write_report("privacy", figures, out_dir, command=command,
                        data={"hash": hash_world(w), "source": f"synthetic world {world!r} (ctxrec.datasets.SIZES), "
                                                               f"seed {seed}"},
                        split=split_facts(graph))
    print(f"\nwritten to {path}")
    return figures


def _number(x: float) -> str:
    """``x`` as the CLI reads it back exactly: ``%g`` when that loses nothing (``8``, ``1e-05``)."""
    short = f"{float(x):g}"
    return short if float(short) == float(x) else repr(float(x))
