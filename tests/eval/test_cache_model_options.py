"""Two configurations of one model with the same weights do not share cached descriptors."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tests.eval.jobs import run_job
from tests.eval.test_two_stage import street  # noqa: F401 - the fixture
from vpr_bench.specs import ModelSpec


class ColourOrGrey(nn.Module):
    """No weights; ``grey`` is an option: the descriptor differs, the state dict does not."""

    descriptor_dim = 3

    def __init__(self, grey: bool) -> None:
        super().__init__()
        self.grey = grey

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3))
        if self.grey:
            mean = mean.mean(dim=1, keepdim=True).expand(-1, 3) + torch.tensor([0.0, 0.1, 0.2])
        return F.normalize(mean, dim=1)


SPEC = ModelSpec(name="colour-or-grey", build=lambda cfg: ColourOrGrey(False), config_cls=dict)


def test_options_are_part_of_the_cache_key(street: Path, tmp_path: Path) -> None:  # noqa: F811
    results = {}
    for grey in (False, True, False):
        record = run_job(
            ColourOrGrey(grey),
            SPEC,
            "csv-folder",
            "test",
            street,
            tmp_path,
            config={"model": {"grey": grey}},
        ).record
        results.setdefault(grey, []).append(record)
    grey_rec = results[True][0]
    assert grey_rec.timing.images_per_s > 0  # extracted, not read from the colour entry
    # the same options hit the cache: it reports the time stored with the entry, to the bit
    assert results[False][1].timing.extraction_s == results[False][0].timing.extraction_s
