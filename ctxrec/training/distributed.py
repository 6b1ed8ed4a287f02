"""Process-group setup for data-parallel training under ``torchrun``.

:class:`~ctxrec.training.trainer.Trainer` needs nothing but an initialised process group:
it reads the rank and world size from :mod:`torch.distributed`, wraps the loss step in
``DistributedDataParallel`` and gives each process a shard of every global batch. This
module starts that group from the environment ``torchrun`` sets, and ends it.

Example:
    >>> rank, world, device = init_distributed()  # doctest: +SKIP
    >>> model = make_model("lightgcn", train=TrainConfig(device=str(device))).fit(graph)  # doctest: +SKIP
    >>> cleanup()  # doctest: +SKIP
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import torch

BACKENDS = ("gloo", "nccl")
#: what torchrun sets for every process
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (``RANK`` and ``WORLD_SIZE`` are set)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(backend: Optional[str] = None) -> Tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment.

    Outside ``torchrun`` this does nothing and returns ``(0, 1, device)`` with the default
    device (CUDA when available, else CPU). Under ``torchrun`` it reads ``RANK``,
    ``WORLD_SIZE`` and ``LOCAL_RANK``, picks the backend, binds the process to the GPU
    ``cuda:LOCAL_RANK`` when there are GPUs, and initialises the group. Calling it again
    returns the same values.

    Args:
        backend: ``"nccl"`` or ``"gloo"``; ``None`` takes ``"nccl"`` when CUDA is available,
            else ``"gloo"`` (default: None).

    Returns:
        ``(rank, world_size, device)``: this process's rank, the number of processes and
        the device it should train on.
    """
    import torch.distributed as dist

    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"init_distributed: backend must be one of {BACKENDS} or None, got {backend!r}")
    cuda = torch.cuda.is_available()
    if not launched_by_torchrun():
        return 0, 1, torch.device("cuda" if cuda else "cpu")
    if not dist.is_available():
        raise RuntimeError("init_distributed: this PyTorch build has no torch.distributed; "
                           "run without torchrun, or install a build with distributed support")
    missing = [v for v in ENV_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(f"init_distributed: RANK and WORLD_SIZE are set but {missing} are not; "
                           "launch with `torchrun --nproc_per_node=N -m ctxrec.training ...`")
    try:
        rank, world, local = (int(os.environ[v]) for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError as e:
        raise RuntimeError(f"init_distributed: RANK, WORLD_SIZE and LOCAL_RANK must be integers, got "
                           f"{[os.environ[v] for v in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')]}") from e
    backend = backend or ("nccl" if cuda else "gloo")
    if backend == "nccl" and not cuda:
        raise RuntimeError("init_distributed: backend 'nccl' needs CUDA, and no GPU is visible; "
                           "use backend='gloo' (or None) on CPU")
    if cuda:
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"init_distributed: LOCAL_RANK={local} but only {torch.cuda.device_count()} "
                               "CUDA device(s) are visible; use --nproc_per_node <= the number of GPUs")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        kwargs = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, rank=rank, world_size=world, **kwargs)
    return dist.get_rank(), dist.get_world_size(), device


def cleanup() -> None:
    """Leave and destroy the process group, if there is one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process of the group; does nothing without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


__all__ = ["init_distributed", "cleanup", "barrier", "launched_by_torchrun"]
