"""Training checkpoints in safetensors: model, optimiser, random state and history.

One folder, two files written atomically: ``checkpoint.safetensors`` (every tensor: the
model's state, the optimiser's per-parameter state, the generator states) and
``checkpoint.json`` (epoch, history, optimiser hyper-parameters, the config). No pickle,
so a checkpoint from an untrusted source cannot run code.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

import torch

WEIGHTS, META = "checkpoint.safetensors", "checkpoint.json"


def save_checkpoint(folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator, meta: Dict[str, Any]) -> Path:
    """Write the training state after an epoch; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, folder / WEIGHTS)
    meta = {**meta, "param_groups": opt["param_groups"]}
    tmp = folder / (META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, default=str))
    os.replace(tmp, folder / META)  # the JSON lands last: its presence means a whole checkpoint
    return folder


def load_checkpoint(folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator) -> Optional[Dict[str, Any]]:
    """Restore a checkpoint written by :func:`save_checkpoint`; ``None`` when there is none."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / META).exists() or not (folder / WEIGHTS).exists():
        return None
    meta = json.loads((folder / META).read_text())
    tensors = load_file(str(folder / WEIGHTS))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: Dict[int, Dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    return meta
