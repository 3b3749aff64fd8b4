"""Two-stage retrieval: a toy model's second descriptor re-ranks its first top_n neighbours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.eval.jobs import run_job
from tests.eval.test_evaluate import street as street_fixture
from vpr_bench.errors import UsageError
from vpr_bench.eval.two_stage import rerank, second_stage_model, two_stage_of
from vpr_bench.specs import ModelSpec


class FlatThenColour(nn.Module):
    """First stage: one constant descriptor (every database image ties, so the search keeps
    database order); second stage: the mean colour, which finds the right place."""

    descriptor_dim = 3
    second_stage_dim = 3

    def __init__(self, top_n: int) -> None:
        super().__init__()
        self.top_n = top_n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(torch.ones(x.shape[0], 3), dim=1)

    def second_stage(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x.mean(dim=(2, 3)), dim=1)


SPEC = ModelSpec(name="flat-then-colour", build=lambda cfg: FlatThenColour(5), config_cls=dict)


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """test_evaluate's street (5 places; query 3 shows place 4's colour), in its own folder."""
    return street_fixture.__wrapped__(  # type: ignore[attr-defined]
        _Renamed(tmp_path_factory, "twostage")
    )


class _Renamed:
    """A tmp_path_factory whose folders get another name (test_evaluate checks its own)."""

    def __init__(self, factory: pytest.TempPathFactory, name: str) -> None:
        self.factory, self.name = factory, name

    def mktemp(self, _: str) -> Path:
        return self.factory.mktemp(self.name)


@pytest.mark.parametrize(("top_n", "r1"), [(5, 75.0), (2, 50.0), (1, 25.0)])
def test_evaluation_reranks_the_first_top_n(
    street: Path,
    tmp_path: Path,
    top_n: int,
    r1: float,
) -> None:
    outcome = run_job(FlatThenColour(top_n), SPEC, "csv-folder", "test", street, tmp_path)
    record = outcome.record
    # first stage: database order, so only query 0 (place 0) is right at rank 1
    two_stage = record.config["evaluation"]["two_stage"]
    assert two_stage["top_n"] == top_n and two_stage["second_stage_dim"] == 3
    assert two_stage["first_stage_metrics"]["R@1"] == pytest.approx(25.0)
    # top 2 = places 0, 1: queries 0 and 1 are found; queries 2 and 3 are not in the pair
    assert record.metrics["R@1"] == pytest.approx(r1)
    assert record.metrics["R@5"] == pytest.approx(100.0)


def test_rerank_is_stable_and_keeps_the_tail() -> None:
    idx = np.array([[3, 1, 2, 0], [2, 0, -1, -1]])
    dist = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, np.inf, np.inf]])
    database = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    queries = np.array([[0.0, 1.0], [1.0, 0.0]])
    new_idx, new_dist = rerank(idx, dist, queries, database, top_n=3)
    # query 0: 1 and 2 tie at 0 (first-stage order 1, 2), 3 is at distance 2; 0 stays last
    assert new_idx[0].tolist() == [1, 2, 3, 0]
    assert new_dist[0].tolist() == [0.0, 0.0, 2.0, 0.4]
    # query 1: only two valid neighbours; padding untouched
    assert new_idx[1].tolist() == [0, 2, -1, -1]
    assert new_dist[1, 2] == np.inf
    assert idx[0, 0] == 3  # inputs are not modified


class Half(nn.Module):
    descriptor_dim = 3

    def __init__(self, top_n: Any) -> None:
        super().__init__()
        self.top_n = top_n
        self.second_stage_dim = 3

    def second_stage(self, x: torch.Tensor, domain: str | None = None) -> torch.Tensor:
        return x.mean(dim=(2, 3)) * (2.0 if domain == "night" else 1.0)


def test_declaration_checks_and_the_second_stage_model() -> None:
    assert two_stage_of(nn.Linear(2, 2)) is None
    assert two_stage_of(Half(2)) == (2, 3)
    with pytest.raises(UsageError, match="top_n is 0"):
        two_stage_of(Half(0))
    model = Half(2)
    model.domains = ("day", "night")
    second = second_stage_model(model)
    assert second.descriptor_dim == 3 and second.domains == ("day", "night")
    x = torch.ones(1, 3, 2, 2)
    assert second(x, domain="night").tolist() == [[2.0, 2.0, 2.0]]
    assert second(x).tolist() == [[1.0, 1.0, 1.0]]
