"""The binary train user-item matrix ``X`` that the neighbourhood baselines share.

``graph.train`` has one row per session occurrence, so a pair can repeat; ``X`` counts
each ``(user, item)`` pair once. ``X`` is never held whole as a dense ``[U, I]`` tensor:
rows are built per batch of users from the CSR of :meth:`RecGraph.seen`, and the Gram
matrix ``X^T X`` is summed over batches of users.
"""
from __future__ import annotations

from typing import Optional

import torch

from ctxrec.data import RecGraph


def user_rows(graph: RecGraph, users: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rows of ``X`` for a batch of users: ``[len(users), num_items]``, 1 where the user has a train pair."""
    users = torch.as_tensor(users, dtype=torch.long).cpu()
    rows, cols = graph.seen().mask_index(users)
    out = torch.zeros(len(users), graph.num_items, dtype=dtype)
    out[rows, cols] = 1
    return out


#: items up to which item-item matrices are computed in float64; above, float32 halves their
#: memory (20,000 items: 1.6 GB instead of 3.2 GB per matrix; counts stay exact up to 2**24)
FLOAT64_UP_TO = 8192


def item_dtype(num_items: int) -> torch.dtype:
    """float64 for item-item matrices of up to :data:`FLOAT64_UP_TO` items, float32 above."""
    return torch.float64 if num_items <= FLOAT64_UP_TO else torch.float32


def gram(graph: RecGraph, batch_size: int = 1024, dtype: torch.dtype = torch.float64,
         items: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Item-item co-occurrence ``X^T X`` ``[num_items, num_items]``; its diagonal is each item's user
    count. With ``items``, only their rows and columns (``[len(items), len(items)]``), in that order."""
    size = graph.num_items if items is None else len(items)
    out = torch.zeros(size, size, dtype=dtype)
    for start in range(0, graph.num_users, batch_size):
        x = user_rows(graph, torch.arange(start, min(start + batch_size, graph.num_users)), dtype)
        if items is not None:
            x = x[:, items]
        out.addmm_(x.T, x)  # in place: no second [I, I] matrix
    return out


def sparse_csr(index: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """A sparse CSR matrix from COO ``index`` ``[2, nnz]`` and ``values`` (duplicates summed)."""
    import warnings

    with warnings.catch_warnings():  # torch's notes that sparse CSR is "beta": its matmul is what we use
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_coo_tensor(index, values, shape).coalesce().to_sparse_csr()
