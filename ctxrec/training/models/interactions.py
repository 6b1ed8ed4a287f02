"""The binary train user-item matrix ``X`` that the neighbourhood baselines share.

``graph.train`` has one row per session occurrence, so a pair can repeat; ``X`` counts
each ``(user, item)`` pair once. ``X`` is never held whole as a dense ``[U, I]`` tensor:
rows are built per batch of users from the CSR of :meth:`RecGraph.seen`, and the Gram
matrix ``X^T X`` is summed over batches of users. Products with item-item matrices take
the rows as sparse CSR (:func:`times_rows`): a user has tens of items, not thousands, so
``X_u M`` costs ``nnz x I``, not ``I x I``, per user.
"""
from __future__ import annotations

import contextlib
import warnings
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


def sparse_rows(row: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """A sparse CSR ``[rows, cols]`` matrix from ``(row, col, value)`` triples with no repeats."""
    return sparse_csr(torch.stack([row, col]), values, shape)


def times_rows(rows: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``rows @ matrix`` for sparse CSR ``rows`` ``[B, I]`` and a dense ``matrix`` ``[I, J]``,
    in the matrix's dtype."""
    return torch.sparse.mm(rows.to(matrix.dtype), matrix)


def user_times(graph: RecGraph, users: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``X_users @ matrix`` ``[len(users), J]`` without building the dense rows."""
    users = torch.as_tensor(users, dtype=torch.long).cpu()
    rows, cols = graph.seen().mask_index(users)
    return times_rows(sparse_rows(rows, cols, torch.ones(len(rows)), (len(users), graph.num_items)), matrix)


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
    position = torch.arange(size) if items is None else torch.full((graph.num_items,), -1, dtype=torch.long)
    if items is not None:
        position[items] = torch.arange(size)
    out = torch.zeros(size, size, dtype=dtype)
    for start in range(0, graph.num_users, batch_size):
        users = torch.arange(start, min(start + batch_size, graph.num_users))
        rows, cols = graph.seen().mask_index(users)
        cols = position[cols]
        keep = cols >= 0
        rows, cols = rows[keep], cols[keep]
        dense = torch.zeros(len(users), size, dtype=dtype)
        dense[rows, cols] = 1
        # X_b^T X_b as a sparse [size, B] times the dense batch: nnz x size, not B x size^2
        out.addmm_(sparse_rows(cols, rows, torch.ones(len(rows), dtype=dtype), (size, len(users))), dense)
    return out


@contextlib.contextmanager
def quiet_sparse():
    """Silence torch's notes that sparse CSR is "beta" (its products are what we use)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        yield


def sparse_csr(index: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """A sparse CSR matrix from COO ``index`` ``[2, nnz]`` and ``values`` (duplicates summed)."""
    with quiet_sparse():
        return torch.sparse_coo_tensor(index, values, shape).coalesce().to_sparse_csr()
