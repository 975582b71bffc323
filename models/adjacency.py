"""Graph operators shared by the propagation models (LightGCN, NGCF, ...).

The user-item graph is held as one symmetric ``(U+I) x (U+I)`` sparse CSR matrix; users occupy rows ``0..U-1`` and
items rows ``U..U+I-1``. It is never densified.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


def normalized_bipartite_adjacency(
    num_users: int, num_items: int, users: np.ndarray, items: np.ndarray
) -> torch.Tensor:
    """Return ``D^-1/2 A D^-1/2`` for the bipartite graph ``A = [[0, R], [R^T, 0]]`` as a CSR tensor.

    This is LightGCN's (and NGCF's) normalisation: the entry for user ``u`` and item ``i`` is
    ``1 / sqrt(|N_u| |N_i|)``. Duplicate (user, item) pairs count once; isolated nodes have empty rows.
    """
    pairs = np.unique(np.stack([np.asarray(users, np.int64), np.asarray(items, np.int64)]), axis=1)
    users, items = pairs[0], pairs[1]
    num_nodes = num_users + num_items
    user_degree = np.bincount(users, minlength=num_users).astype(np.float64)
    item_degree = np.bincount(items, minlength=num_items).astype(np.float64)
    weight = 1.0 / np.sqrt(user_degree[users] * item_degree[items])
    rows = np.concatenate([users, items + num_users])
    cols = np.concatenate([items + num_users, users])
    values = np.concatenate([weight, weight]).astype(np.float32)
    with warnings.catch_warnings():
        # torch flags its sparse CSR support as beta on every construction; the operations used here are stable.
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*support is in beta.*")
        coo = torch.sparse_coo_tensor(
            torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(values), (num_nodes, num_nodes),
            check_invariants=False,  # indices are built in range above; checking costs a pass over every edge
        )
        return coo.coalesce().to_sparse_csr()


class _SymmetricSparseMatmul(torch.autograd.Function):
    """``A @ x`` for a constant symmetric sparse ``A``, whose gradient w.r.t. ``x`` is ``A @ grad``.

    torch's own backward for a CSR product transposes (and re-sorts) ``A`` on every call; for a symmetric ``A`` the
    transpose is ``A`` itself, which halves the cost of a training step.
    """

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, dense)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return None, torch.sparse.mm(ctx.adjacency, grad_output)


def symmetric_propagate(adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """Multiply a constant symmetric sparse matrix by a dense one, with the cheap symmetric backward."""
    return _SymmetricSparseMatmul.apply(adjacency, dense)


def csr_tensor(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: int | tuple[int, int]) -> torch.Tensor:
    """A CSR tensor from its parts (a square ``shape`` may be given as one size), without torch's beta warning and
    without re-checking invariants the caller built the parts to hold."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*support is in beta.*")
        size = (shape, shape) if isinstance(shape, int) else shape
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


def csr_from_pairs(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A ``shape`` CSR tensor with ``values`` at (``rows``, ``cols``), given in any order."""
    order = torch.argsort(rows * shape[1] + cols, stable=True)
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
    return csr_tensor(crow, cols[order], values[order], shape)


class _SparseMatmul(torch.autograd.Function):
    """``A @ x`` for a constant sparse ``A`` whose transpose is given: the backward is one more product, ``A^T @ grad``."""

    @staticmethod
    def forward(ctx, matrix: torch.Tensor, transposed: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.transposed = transposed
        return torch.sparse.mm(matrix, dense)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return None, None, torch.sparse.mm(ctx.transposed, grad_output)


def sparse_matmul(matrix: torch.Tensor, transposed: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``matrix @ dense`` for a constant sparse matrix whose transpose is precomputed (a non-symmetric operator)."""
    return _SparseMatmul.apply(matrix, transposed, dense)
