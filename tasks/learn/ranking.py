"""Full-catalog top-K ranking without ever holding a users x items score matrix.

Users go through in batches and items in contiguous chunks, and each batch keeps only its best candidates per user,
so peak memory is about ``user_batch x (item_chunk + 5k)`` scores whatever the catalog size. The order is exact and
deterministic: score descending, then item index ascending. That holds at the k-th place and across chunk
boundaries too, so the published lists do not depend on the batch or chunk sizes, the device, or the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gnnrec.models.base import Scorer

# The pile of per-chunk candidates is cut back to the best k once it is this many times k wide.
_PILE_CUT_WIDTH = 4


@dataclass(frozen=True)
class UserItemSets:
    """For each user ``u``, a sorted set of distinct item indices (``indices[indptr[u]:indptr[u + 1]]``): CSR form."""

    indptr: np.ndarray
    indices: np.ndarray

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or len(self.indptr) == 0 or self.indptr[0] != 0:
            raise ValueError("indptr must be a non-empty 1-d array starting at 0")
        if self.indptr[-1] != len(self.indices):
            raise ValueError(f"indptr ends at {self.indptr[-1]} but there are {len(self.indices)} indices")

    @classmethod
    def from_pairs(cls, users: np.ndarray, items: np.ndarray, num_users: int) -> UserItemSets:
        """Group ``(users[j], items[j])`` pairs by user; duplicates are dropped and each user's items sorted."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if users.ndim != 1 or users.shape != items.shape:
            raise ValueError("users and items must be 1-d arrays of the same length")
        if len(users) and (users.min() < 0 or users.max() >= num_users or items.min() < 0):
            raise ValueError(f"users must lie in [0, {num_users}) and items must be non-negative")
        order = np.lexsort((items, users))
        users, items = users[order], items[order]
        distinct = np.ones(len(users), dtype=bool)
        distinct[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
        users, items = users[distinct], items[distinct]
        indptr = np.zeros(num_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=num_users), out=indptr[1:])
        return cls(indptr, items)

    @property
    def num_users(self) -> int:
        return len(self.indptr) - 1

    def items_of(self, user: int) -> np.ndarray:
        return self.indices[self.indptr[user] : self.indptr[user + 1]]

    def take(self, users: np.ndarray) -> UserItemSets:
        """The sets of ``users`` alone, row ``j`` holding ``users[j]``'s: lines a set up with the rows of a TopK."""
        users = np.asarray(users, dtype=np.int64)
        if len(users) and (users.min() < 0 or users.max() >= self.num_users):
            raise ValueError(f"users must lie in [0, {self.num_users})")
        starts = self.indptr[users]
        counts = self.indptr[users + 1] - starts
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        positions = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])
        return UserItemSets(indptr, self.indices[positions])


@dataclass(frozen=True)
class TopK:
    """``items[j]`` are ``users[j]``'s best items, best first, with ``scores[j]`` their scores.

    A user with fewer than k rankable items has its row padded with item ``-1`` and score ``-inf``.
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray


def rank_top_k(
    scorer: Scorer,
    users: np.ndarray,
    num_items: int,
    k: int,
    exclude: UserItemSets | None,
    user_batch: int = 1024,
    item_chunk: int = 16384,
    device: torch.device | str = "cpu",
    exclude_for_all: np.ndarray | None = None,
) -> TopK:
    """Each user's k best items among ``0..num_items-1``, leaving out the user's items in ``exclude`` and the items
    ``exclude_for_all`` for every user (masked as columns: items that did not exist yet would otherwise be spelt out
    as users x items pairs, 103 million of them for a day of Ciao).

    Ties are broken by the smaller item index. Scores are compared as float32, the precision they are published
    in, and an item scored ``-inf`` counts as unrankable (that is how excluded items are masked). The scorer's
    output is masked in place, so a scorer must return a fresh tensor, not a view of state it keeps.
    """
    if k < 0 or num_items < 0 or user_batch < 1 or item_chunk < 1:
        raise ValueError("k and num_items must be >= 0, user_batch and item_chunk >= 1")
    users = np.asarray(users, dtype=np.int64)
    if users.ndim != 1:
        raise ValueError("users must be a 1-d array")
    if len(users) and users.min() < 0:
        raise ValueError("user indices must be non-negative")
    if exclude is not None and len(users) and users.max() >= exclude.num_users:
        raise ValueError(f"user {users.max()} is outside exclude, which covers {exclude.num_users} users")

    everyone = np.unique(np.asarray(exclude_for_all if exclude_for_all is not None else [], dtype=np.int64))
    items = np.full((len(users), k), -1, dtype=np.int64)
    scores = np.full((len(users), k), -np.inf, dtype=np.float32)
    kept = min(k, num_items)
    if kept == 0:
        return TopK(users, items, scores)
    device = torch.device(device)
    with torch.no_grad():
        for start in range(0, len(users), user_batch):
            batch = users[start : start + user_batch]
            batch_scores, batch_items = _rank_batch(scorer, batch, num_items, kept, exclude, everyone, item_chunk, device)
            scores[start : start + len(batch), :kept] = batch_scores.cpu().numpy()
            items[start : start + len(batch), :kept] = batch_items.cpu().numpy()
    return TopK(users, items, scores)


def _rank_batch(
    scorer: Scorer,
    users: np.ndarray,
    num_items: int,
    k: int,
    exclude: UserItemSets | None,
    everyone: np.ndarray,
    item_chunk: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact top-k (``k <= num_items``) of one user batch, with ``-1`` for unrankable places; ``everyone``:
    sorted items masked for every user."""
    excluded_rows, excluded_items = _excluded_pairs(exclude, users)
    user_ids = torch.from_numpy(users).to(device)
    # Each chunk's own top-k piles up and is cut back to k only now and then, not after every chunk: a cut is a few
    # small sorts and gathers, each a parallel region of its own, and on a busy CPU their fixed cost rivals a chunk's.
    pile_scores: list[torch.Tensor] = []
    pile_items: list[torch.Tensor] = []
    pile_width = 0
    for start in range(0, num_items, item_chunk):
        stop = min(start + item_chunk, num_items)
        chunk = scorer.score(user_ids, slice(start, stop)).float().contiguous()
        if chunk.shape != (len(users), stop - start):
            raise ValueError(f"scorer returned shape {tuple(chunk.shape)}, expected {(len(users), stop - start)}")
        lo, hi = np.searchsorted(excluded_items, [start, stop])
        if hi > lo:
            # A fill at flat positions is many times faster than a two-index assignment on CPU.
            flat = excluded_rows[lo:hi] * (stop - start) + (excluded_items[lo:hi] - start)
            chunk.view(-1).index_fill_(0, torch.from_numpy(flat).to(device), -torch.inf)
        lo, hi = np.searchsorted(everyone, [start, stop])
        if hi > lo:
            chunk.index_fill_(1, torch.from_numpy(everyone[lo:hi] - start).to(device), -torch.inf)
        chunk_scores, chunk_columns = _chunk_top_k(chunk, k)
        # Free this chunk's scores before the scorer allocates the next one: one chunk at a time bounds peak memory.
        del chunk
        pile_scores.append(chunk_scores)
        pile_items.append(chunk_columns + start)
        pile_width += chunk_scores.shape[1]
        if pile_width >= _PILE_CUT_WIDTH * k:
            best_scores, best_items = _best_of(torch.cat(pile_scores, dim=1), torch.cat(pile_items, dim=1), k)
            pile_scores, pile_items, pile_width = [best_scores], [best_items], k
    best_scores, best_items = _best_of(torch.cat(pile_scores, dim=1), torch.cat(pile_items, dim=1), k)
    # torch ranks NaN above every number, so one NaN score anywhere in a row reaches that row's best list.
    if torch.isnan(best_scores).any():
        raise ValueError("the scorer returned NaN scores")
    best_items[best_scores == -torch.inf] = -1
    return best_scores, best_items


def _excluded_pairs(exclude: UserItemSets | None, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (row in batch, item) pairs to mask, sorted by item so that each chunk's pairs are one slice."""
    if exclude is None:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    sets = exclude.take(users)
    rows = np.repeat(np.arange(len(users), dtype=np.int64), np.diff(sets.indptr))
    order = np.argsort(sets.indices, kind="stable")
    return rows[order], sets.indices[order]


def _chunk_top_k(chunk: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact top-k of every row of a score chunk, as (scores, columns) in no set order; whole rows when short."""
    width = chunk.shape[1]
    if width <= k:
        return chunk, torch.arange(width, device=chunk.device).expand(len(chunk), width)
    # torch.topk picks arbitrarily among equal scores. Asking for one extra place shows cheaply which rows have a tie
    # across the k-th place (where topk may have kept the wrong items); only those rows are redone exactly.
    scores, columns = torch.topk(chunk, k + 1, dim=1)
    kth = scores[:, k - 1]
    tied = (scores[:, k] == kth) & (kth > -torch.inf)
    scores, columns = scores[:, :k], columns[:, :k]
    rows = tied.nonzero().squeeze(1)
    if len(rows):
        scores[rows], columns[rows] = _leftmost_top_k(chunk[rows], kth[rows], k)
    return scores, columns


def _leftmost_top_k(chunk: torch.Tensor, kth: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's top k with ties going to the smaller column, given the row's k-th best score; in column order.

    A few passes over the row rather than a sort: a tie-heavy scorer (popularity counts, an all-zero cold-start
    user) sends every row here.
    """
    # NaN counts as above every number, as torch.topk ranks it, so every row has exactly k places to fill.
    above = ~(chunk <= kth[:, None])
    at_kth = chunk == kth[:, None]
    # The places left after the scores above the k-th go to the leftmost scores equal to it.
    left = k - above.sum(dim=1, keepdim=True, dtype=torch.int32)
    taken = above | (at_kth & (at_kth.cumsum(dim=1, dtype=torch.int32) <= left))
    columns = taken.nonzero()[:, 1].view(len(chunk), k)
    return chunk.gather(1, columns), columns


def _best_of(scores: torch.Tensor, items: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best candidates of every row, ordered by (score descending, item ascending); items distinct per row."""
    # A lexicographic sort: order by item first, then a stable sort by score keeps that order among equal scores.
    by_item = torch.argsort(items, dim=1)
    scores, items = scores.gather(1, by_item), items.gather(1, by_item)
    by_score = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
    return scores.gather(1, by_score), items.gather(1, by_score)
