"""The Bayesian Personalised Ranking objective shared by the implicit-feedback models."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(
    user_vectors: torch.Tensor,
    pos_vectors: torch.Tensor,
    neg_vectors: torch.Tensor,
    ego_vectors: tuple[torch.Tensor, ...],
    l2: float,
) -> torch.Tensor:
    """``mean(-ln sigma(y_ui - y_uj)) + l2/2 * sum ||ego||^2 / batch`` (Rendle et al., UAI 2009, eq. 7).

    ``neg_vectors`` is ``B x d`` (one negative per positive) or ``B x K x d`` (K negatives, the loss averaged over
    them). The penalty is on the *ego* (layer-0) embeddings of the batch only, as in the LightGCN paper (eq. 15), so
    its strength does not depend on how many layers propagate them; K negatives share one negative's penalty.
    """
    batch = user_vectors.shape[0]
    pos_scores = (user_vectors * pos_vectors).sum(dim=-1)
    if neg_vectors.dim() == 3:
        neg_scores = (user_vectors.unsqueeze(1) * neg_vectors).sum(dim=-1)
        pos_scores = pos_scores.unsqueeze(1)
    else:
        neg_scores = (user_vectors * neg_vectors).sum(dim=-1)
    ranking = F.softplus(neg_scores - pos_scores).mean()
    penalty = sum(vector.pow(2).sum(dim=-1).reshape(batch, -1).mean(dim=1).sum() for vector in ego_vectors) / (2 * batch)
    return ranking + l2 * penalty


def joint_embedding_bpr_loss(
    encoded_users: torch.Tensor, encoded_items: torch.Tensor, ego: torch.Tensor, num_users: int,
    users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, l2: float,
) -> torch.Tensor:
    """:func:`bpr_loss` for a propagation model whose ego embeddings are one ``(U+I) x d`` table, users first:
    scores from the propagated vectors, the penalty on the batch's rows of the table."""
    ego_vectors = (ego[users], ego[positives + num_users], ego[negatives + num_users])
    return bpr_loss(encoded_users[users], encoded_items[positives], encoded_items[negatives], ego_vectors, l2)
