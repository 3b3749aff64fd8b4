"""Grad-SAM: gradient-weighted similarity activation maps (methods.md A.2.6).

For a query code Q and a reference R (``[C, H, W]`` each), the channel weight is the spatial
sum of ``d mcos(Q, R) / dQ`` (``find_sam_weight``, DISAM ``disam_model.py:335-340``) and the map
is ``ReLU(sum_c w_c Q_c)``. The reference takes the gradient with ``create_graph=True``; here
the weight is its closed form, which autograd differentiates into both Q and R the same way:

    d cos(q, r) / dq = r / (|q| |r|) - (q . r) q / (|q|^3 |r|),   divided by C for the mean.
"""

from __future__ import annotations

import torch

__all__ = ["sam_map", "sam_weight"]


def sam_weight(query: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Channel weights ``w [B, C]`` of Grad-SAM for ``[B, C, H, W]`` codes.

    ``w_c = sum_{h,w} d mcos(Q, R) / d Q[c, h, w]``, differentiable in both arguments.
    """
    q = query.flatten(2)
    r = reference.flatten(2)
    channels = q.shape[1]
    q_norm = q.norm(dim=2)
    r_norm = r.norm(dim=2)
    dot = (q * r).sum(dim=2)
    q_sum = q.sum(dim=2)
    r_sum = r.sum(dim=2)
    grad_sum = r_sum / (q_norm * r_norm) - dot * q_sum / (q_norm**3 * r_norm)
    result: torch.Tensor = grad_sum / channels
    return result


def sam_map(query: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``SAM(Q | R) = ReLU(sum_c w_c Q_c)``: ``[B, H, W]`` for ``[B, C, H, W]`` codes."""
    weight = sam_weight(query, reference)
    return torch.relu((query * weight[:, :, None, None]).sum(dim=1))
