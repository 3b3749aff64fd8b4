"""The harness's own built-ins pass the conformance kit they ship to plugin authors."""

from __future__ import annotations

import math

import torch

from vpr_bench.builtin.triplet import TripletConfig, TripletLoss
from vpr_bench.testing import LossConformance, ModelConformance


class TestTinyGeM(ModelConformance):
    model_name = "tiny-gem"
    model_overrides = {"width": 4, "dim": 16}


class TestTinyGeMWithoutProjection(ModelConformance):
    model_name = "tiny-gem"
    model_overrides = {"width": 4, "dim": 0}


class TestTriplet(LossConformance):
    loss_name = "triplet"


def test_triplet_hand_computed() -> None:
    # One tuple in 2-D: a=(1,0), p=(0.6,0.8), n1=(0,1), n2=(-1,0); eps=0 for exact numbers.
    a = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[[0.6, 0.8]]])
    n = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])
    loss = TripletLoss(TripletConfig(margin=1.0, eps=0.0))(a, p, n)
    d_p = math.sqrt(0.4**2 + 0.8**2)
    expected = (max(0.0, d_p - math.sqrt(2) + 1.0) + max(0.0, d_p - 2.0 + 1.0)) / 2
    assert math.isclose(float(loss), expected, rel_tol=1e-6)


def test_triplet_default_margin_is_openibl_sqrt_point_one() -> None:
    assert math.isclose(TripletConfig().margin, math.sqrt(0.1))
