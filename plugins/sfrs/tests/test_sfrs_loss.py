"""SFRSLoss by hand: masking of padded difficult positives, generations, options and errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_bench.errors import ConfigError
from vpr_bench_sfrs.loss import SFRSConfig, SFRSLoss, hard_negative_regions


def _oracle_batch(
    oracles_dir: Path,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    with np.load(oracles_dir / "losses_openibl.npz") as npz:
        return (
            torch.from_numpy(npz["sfrs__vlad_anchors"])[:, 0],
            torch.from_numpy(npz["sfrs__vlad_pairs"]),
            torch.from_numpy(npz["sfrs__sim_diff"]),
            torch.from_numpy(npz["sfrs__sim_diff_label"]),
        )


def _hand_batch() -> tuple[torch.Tensor, ...]:
    """One tuple, R = 2 regions in 2-d, two negatives, one real and one padded positive."""
    t = torch.tensor
    f64 = torch.float64
    anchors = t([[[1.0, 0.0], [0.0, 1.0]]], dtype=f64)  # global (1, 0)
    positive = [[0.6, 0.8], [1.0, 0.0]]  # s_p = 0.6
    negative_1 = [[0.0, 1.0], [0.8, 0.6]]  # global 0.0, region 1 0.8: region 1 is harder
    negative_2 = [[0.2, math.sqrt(0.96)], [-1.0, 0.0]]  # global 0.2, region 1 -1.0
    pairs = t([[positive, negative_1, negative_2]], dtype=f64)
    # [B=1, P=2, R=2, R=2]; only row 0 (the query's global region) is used.
    sim_diff = t([[[[0.5, 0.1], [9.0, 9.0]], [[0.9, -0.3], [9.0, 9.0]]]], dtype=f64)
    teacher = t([[[[0.4, 0.2], [9.0, 9.0]], [[-5.0, 7.0], [9.0, 9.0]]]], dtype=f64)
    mask = t([[True, False]])
    return anchors, pairs, sim_diff, teacher, mask


def test_hand_computed_values() -> None:
    loss = SFRSLoss(SFRSConfig(temperatures=(0.1, 0.2)))
    batch = _hand_batch()
    assert hard_negative_regions(batch[0], batch[1]).tolist() == [[1, 0]]

    def softplus(x: float) -> float:
        return math.log1p(math.exp(x))

    hard_gen0 = (softplus((0.0 - 0.6) / 0.1) + softplus((0.2 - 0.6) / 0.1)) / 2
    hard_gen1 = (softplus((0.8 - 0.6) / 0.1) + softplus((0.2 - 0.6) / 0.1)) / 2
    # Only the real positive's two entries: teacher softmax([0.4, 0.2] / 0.2) (generation 1),
    # student log_softmax([0.5, 0.1] / 0.1).
    target = [math.exp(2.0) / (math.exp(2.0) + math.exp(1.0))]
    target.append(1 - target[0])
    norm = math.log(math.exp(5.0) + math.exp(1.0))
    soft_gen1 = -(target[0] * (5.0 - norm) + target[1] * (1.0 - norm))
    hard, soft = loss.parts(*batch, 1)
    assert float(hard) == pytest.approx(hard_gen1, rel=1e-13)
    assert float(soft) == pytest.approx(soft_gen1, rel=1e-13)
    assert float(loss(*batch, 1)) == pytest.approx(hard_gen1 + 0.5 * soft_gen1, rel=1e-13)
    assert float(loss(*batch, 0)) == pytest.approx(hard_gen0, rel=1e-13)


def test_padded_positives_change_nothing(oracles_dir: Path) -> None:
    anchors, pairs, sim_diff, teacher = _oracle_batch(oracles_dir)
    loss = SFRSLoss()
    real = 6
    garbage = torch.randn(sim_diff[:, real:].shape, generator=torch.Generator().manual_seed(3))
    padded_sim = torch.cat([sim_diff[:, :real], garbage * 5], dim=1).requires_grad_(True)
    padded_teacher = torch.cat([teacher[:, :real], -garbage], dim=1)
    mask = torch.arange(sim_diff.shape[1]).expand(2, -1) < real
    short_sim = sim_diff[:, :real].clone().requires_grad_(True)
    full = torch.ones(2, real, dtype=torch.bool)
    for generation in range(4):
        hard_p, soft_p = loss.parts(anchors, pairs, padded_sim, padded_teacher, mask, generation)
        hard_s, soft_s = loss.parts(anchors, pairs, short_sim, teacher[:, :real], full, generation)
        torch.testing.assert_close(hard_p, hard_s, rtol=0, atol=0)
        torch.testing.assert_close(soft_p, soft_s, rtol=1e-14, atol=1e-14)
        (grad_padded,) = torch.autograd.grad(soft_p, padded_sim)
        (grad_short,) = torch.autograd.grad(soft_s, short_sim)
        torch.testing.assert_close(grad_padded[:, :real], grad_short, rtol=1e-13, atol=1e-15)
        assert not grad_padded[:, real:].any()


def test_tuples_with_different_numbers_of_positives(oracles_dir: Path) -> None:
    anchors, pairs, sim_diff, teacher = _oracle_batch(oracles_dir)
    loss = SFRSLoss()
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[0, 4:] = False  # tuple 0 has 4 difficult positives, tuple 1 has 10
    _, soft = loss.parts(anchors, pairs, sim_diff, teacher, mask, 2)
    _, soft_0 = loss.parts(
        anchors[:1], pairs[:1], sim_diff[:1, :4], teacher[:1, :4], mask[:1, :4], 2
    )
    _, soft_1 = loss.parts(anchors[1:], pairs[1:], sim_diff[1:], teacher[1:], mask[1:], 2)
    torch.testing.assert_close(soft, (soft_0 + soft_1) / 2, rtol=1e-14, atol=1e-14)


def test_a_tuple_without_difficult_positives_adds_zero_to_the_mean(oracles_dir: Path) -> None:
    anchors, pairs, sim_diff, teacher = _oracle_batch(oracles_dir)
    loss = SFRSLoss()
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1] = False
    sim = sim_diff.clone().requires_grad_(True)
    _, soft = loss.parts(anchors, pairs, sim, teacher, mask, 1)
    _, soft_0 = loss.parts(anchors[:1], pairs[:1], sim_diff[:1], teacher[:1], mask[:1], 1)
    torch.testing.assert_close(soft, soft_0 / 2, rtol=1e-14, atol=1e-14)  # mean over B = 2
    soft.backward()
    assert sim.grad is not None and torch.isfinite(sim.grad).all() and not sim.grad[1].any()
    # No difficult positive at all (P = 0): the soft term is 0, the hard term unchanged.
    empty = sim_diff[:, :0].clone().requires_grad_(True)
    hard, soft = loss.parts(anchors, pairs, empty, teacher[:, :0], mask[:, :0], 1)
    assert float(soft.detach()) == 0.0 and torch.isfinite(hard)
    (hard + soft).backward()


def test_the_teacher_gets_no_gradient(oracles_dir: Path) -> None:
    anchors, pairs, sim_diff, teacher = _oracle_batch(oracles_dir)
    teacher.requires_grad_(True)
    mask = torch.ones(2, 10, dtype=torch.bool)
    SFRSLoss()(anchors, pairs, sim_diff.requires_grad_(True), teacher, mask, 3).backward()
    assert teacher.grad is None and sim_diff.grad is not None


def test_later_generations_train_only_the_chosen_negative_regions(oracles_dir: Path) -> None:
    anchors, pairs, sim_diff, teacher = _oracle_batch(oracles_dir)
    pairs.requires_grad_(True)
    mask = torch.ones(2, 10, dtype=torch.bool)
    hard, _ = SFRSLoss().parts(anchors, pairs, sim_diff, teacher, mask, 1)
    hard.backward()
    assert pairs.grad is not None
    touched = pairs.grad[:, 1:].abs().sum(dim=-1) > 0  # [B, N, R]
    chosen = hard_negative_regions(anchors, pairs)
    expected = torch.zeros_like(touched)
    expected.scatter_(2, chosen[:, :, None], True)
    assert torch.equal(touched, expected)
    positive_touched = pairs.grad[:, 0].abs().sum(dim=-1) > 0
    assert positive_touched[:, 0].all() and not positive_touched[:, 1:].any()  # global only


def test_more_generations_than_temperatures_are_refused() -> None:
    loss = SFRSLoss()
    loss.check_generations(4)
    with pytest.raises(ConfigError) as info:
        loss.check_generations(5)
    message = str(info.value)
    assert "\n" not in message
    assert "loss.temperatures has 4 entries but 5 generations" in message
    assert "fewer temperatures than generations" in message
    assert "--set loss.temperatures=0.07,0.07,0.06,0.05,0.05" in message
    with pytest.raises(ConfigError, match="at least 1 generation"):
        loss.check_generations(0)


def test_a_generation_without_its_temperature_is_refused() -> None:
    batch = _hand_batch()
    loss = SFRSLoss(SFRSConfig(temperatures=(0.1, 0.2)))
    loss(*batch, 1)
    with pytest.raises(ConfigError, match=r"loss.temperatures has 2 entries but generation 2 "):
        loss(*batch, 2)
    with pytest.raises(ValueError, match="generation must be an int >= 0"):
        loss(*batch, -1)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"hard": "sare"}, "loss.hard = 'sare' is not valid; choose one of: sare-ind, "),
        ({"temperatures": ()}, "loss.temperatures is empty"),
        ({"temperatures": (0.07, 0.0)}, "loss.temperatures = 0.07,0.0 is out of range"),
        ({"soft_weight": -1.0}, "loss.soft_weight = -1.0 is out of range"),
        ({"margin": float("nan")}, "loss.margin = nan is out of range"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as info:
        SFRSConfig(**options)  # type: ignore[arg-type]
    assert says in str(info.value) and "\n" not in str(info.value)


def test_temperatures_given_as_a_list_become_a_tuple() -> None:
    assert SFRSConfig(temperatures=[0.1, 0.05]).temperatures == (0.1, 0.05)  # type: ignore[arg-type]


def test_soft_weight_applies_from_generation_one() -> None:
    batch = _hand_batch()
    loss = SFRSLoss(SFRSConfig(temperatures=(0.1, 0.2, 0.3), soft_weight=2.0))
    for generation in (1, 2):
        hard, soft = loss.parts(*batch, generation)
        torch.testing.assert_close(loss(*batch, generation), hard + 2.0 * soft)
    assert loss.soft_weight_for(0) == 0.0 and loss.soft_weight_for(2) == 2.0


def test_bad_shapes_are_rejected() -> None:
    anchors, pairs, sim_diff, teacher, mask = _hand_batch()
    loss = SFRSLoss()
    with pytest.raises(ValueError, match=r"anchors \[B, R, L\], pairs \[B, 1\+N>=2, R, L\]"):
        loss(anchors[:, 0], pairs, sim_diff, teacher, mask, 0)
    with pytest.raises(ValueError, match="diff_mask"):
        loss(anchors, pairs, sim_diff, teacher, mask.long(), 0)
    with pytest.raises(ValueError, match=r"\(1, 1, 2, 2\)"):
        loss(anchors, pairs[:, :1], sim_diff, teacher, mask, 0)
    with pytest.raises(ValueError, match="sim_diff_teacher"):
        loss(anchors, pairs, sim_diff, teacher[:, :1], mask, 0)
