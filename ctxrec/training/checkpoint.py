"""Training checkpoints in safetensors: model, optimiser, random state, best weights and history.

One file holds the whole state, so a kill at any moment leaves either the previous
checkpoint or the new one, never a mix: ``checkpoint.safetensors`` carries every tensor (the
model's state, the optimiser's per-parameter state, the generator states, the best weights
so far as ``best.*``) and, in its header, the metadata (epoch, history, optimiser
hyper-parameters, the config). It is written to a temporary file, flushed to disk and moved
into place with ``os.replace`` (atomic on POSIX and Windows); a half-written temporary file is
never read. ``checkpoint.json`` is a readable copy of the metadata, written after. No pickle,
so a checkpoint from an untrusted source cannot run code.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

import torch

WEIGHTS, META = "checkpoint.safetensors", "checkpoint.json"
_META_KEY = "ctxrec.meta"  # the metadata's key in the safetensors header


def _replace_atomically(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as f:  # on disk before the rename, so a crash cannot leave a named empty file
        os.fsync(f.fileno())
    os.replace(tmp, final)


def save_checkpoint(folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator, meta: Dict[str, Any],
                    best_state: Optional[Dict[str, torch.Tensor]] = None) -> Path:
    """Write the training state after an epoch, atomically; returns the folder.

    Args:
        folder (str | Path): checkpoint folder (created if absent).
        model, optimizer, generator: the training state.
        meta (dict): JSON-serialisable metadata (epoch, history, config ...).
        best_state (dict, optional): the best weights so far, restored by the trainer at the end.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    for k, v in (best_state or {}).items():
        tensors[f"best.{k}"] = v.detach().cpu().contiguous()
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    text = json.dumps({**meta, "param_groups": opt["param_groups"]}, indent=1, default=str)
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp), metadata={_META_KEY: text})
    _replace_atomically(tmp, folder / WEIGHTS)
    tmp = folder / (META + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, folder / META)
    return folder


def load_checkpoint(folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator) -> Optional[Dict[str, Any]]:
    """Restore a checkpoint written by :func:`save_checkpoint`; ``None`` when there is none.

    Returns:
        dict: the metadata, plus ``"best_state"`` (the best weights, or None).

    Raises:
        ValueError: the checkpoint file is damaged or not one of ours (it is never half-loaded).
    """
    from safetensors import safe_open

    path = Path(folder) / WEIGHTS
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(header[_META_KEY])
        groups = meta.pop("param_groups")
        model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        rng = tensors["rng.generator"], tensors["rng.torch"]
    except Exception as e:  # safetensors raises its own error types, json ValueError, a missing key KeyError
        raise ValueError(f"checkpoint {str(path)!r} cannot be read ({type(e).__name__}: {e}); it is damaged or "
                         f"was not written by ctxrec: delete the folder to start over, or train with "
                         f"resume=False") from e
    model.load_state_dict(model_state)
    state: Dict[int, Dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    generator.set_state(rng[0])
    torch.set_rng_state(rng[1])
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    return {**meta, "best_state": best or None}
