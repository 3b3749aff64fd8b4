"""The sharpened triplet marginal loss, computed by hand (values and gradients)."""

from __future__ import annotations

import math

import pytest
import torch

from vpr_bench_deattention.loss import STMLConfig, STMLLoss

Q = [1.0, 0.0]
P = [0.8, 0.6]
N_INACTIVE = [0.0, 1.0]  # 0.632456 + 0.1 - 1.414214 + 1.4 - 0.894427 < 0: hinge off
N_ACTIVE = [0.6, 0.8]  # 0.632456 + 0.1 - 0.894427 + 1.4 - 0.282843 = 0.955186


def _tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q = torch.tensor([Q], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([[P]], dtype=torch.float64, requires_grad=True)
    n = torch.tensor([[N_INACTIVE, N_ACTIVE]], dtype=torch.float64, requires_grad=True)
    return q, p, n


def test_value_by_hand() -> None:
    q, p, n = _tensors()
    loss = STMLLoss()(q, p, n)
    d_qp, d_qn, d_pn = math.sqrt(0.4), math.sqrt(0.8), math.sqrt(0.08)
    active = d_qp + 0.1 - d_qn + 1.4 - d_pn
    assert active == pytest.approx(0.955186, abs=1e-6)
    assert float(loss.detach()) == pytest.approx(active / 2, rel=1e-12)  # mean over 2 negatives


def test_gradients_by_hand_with_an_inactive_hinge() -> None:
    q, p, n = _tensors()
    STMLLoss()(q, p, n).backward()
    assert q.grad is not None and p.grad is not None and n.grad is not None
    # d/dq = ((q - p)/d_qp - (q - n)/d_qn) / 2 for the active negative only.
    expected_q = [
        (0.2 / math.sqrt(0.4) - 0.4 / math.sqrt(0.8)) / 2,
        (-0.6 / math.sqrt(0.4) + 0.8 / math.sqrt(0.8)) / 2,
    ]
    expected_p = [
        (-0.2 / math.sqrt(0.4) - 0.2 / math.sqrt(0.08)) / 2,
        (0.6 / math.sqrt(0.4) + 0.2 / math.sqrt(0.08)) / 2,
    ]
    expected_n = [
        (0.4 / math.sqrt(0.8) + 0.2 / math.sqrt(0.08)) / 2,
        (-0.8 / math.sqrt(0.8) - 0.2 / math.sqrt(0.08)) / 2,
    ]
    torch.testing.assert_close(q.grad[0], torch.tensor(expected_q, dtype=torch.float64))
    torch.testing.assert_close(p.grad[0, 0], torch.tensor(expected_p, dtype=torch.float64))
    torch.testing.assert_close(n.grad[0, 0], torch.zeros(2, dtype=torch.float64))  # inactive
    torch.testing.assert_close(n.grad[0, 1], torch.tensor(expected_n, dtype=torch.float64))
    assert expected_n[0] == pytest.approx(0.577160, abs=1e-6)


def test_batch_mean_over_query_negative_pairs_and_first_positive() -> None:
    loss_fn = STMLLoss(STMLConfig(margin=0.3, pn_margin=0.5))
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    p = torch.randn(3, 2, 5, generator=gen, dtype=torch.float64)
    n = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    total = 0.0
    for b in range(3):
        for j in range(4):
            d_qp = float((q[b] - p[b, 0]).norm())
            d_qn = float((q[b] - n[b, j]).norm())
            d_pn = float((p[b, 0] - n[b, j]).norm())
            total += max(0.0, d_qp + 0.3 - d_qn + 0.5 - d_pn)
    assert float(loss_fn(q, p, n)) == pytest.approx(total / 12, rel=1e-12)


def test_all_hinges_inactive_gives_zero_and_zero_gradient() -> None:
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([[[1.0, 0.01]]], dtype=torch.float64)
    n = torch.tensor([[[-1.0, 0.0]]], dtype=torch.float64)
    loss = STMLLoss()(q, p, n)  # 0.01 + 0.1 - 2 + 1.4 - 2.00002 < 0
    loss.backward()
    assert float(loss) == 0.0
    assert q.grad is not None and float(q.grad.abs().max()) == 0.0


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="anchors \\[B, D\\]"):
        STMLLoss()(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 1, 3))
