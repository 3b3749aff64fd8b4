from __future__ import annotations

import math
from pathlib import Path

import pytest
from record_factory import PITTS_V2, make_record, put

from vpr_bench.errors import UsageError
from vpr_bench.leaderboard.collect import collect_records, records_frame, trained_here
from vpr_bench.records import write_record


def test_collect_reads_valid_records_and_reports_bad_files_by_name(tmp_path: Path) -> None:
    good = put(tmp_path, method="netvlad")
    hidden = put(tmp_path, method="tiny", leaderboard=False)
    broken = tmp_path / "pittsburgh" / "sare.run1" / "pitts30k.test.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json", encoding="utf-8")
    misplaced = tmp_path / "other" / "netvlad.run1" / "pitts30k.test.json"
    write_record(make_record(method="netvlad"), misplaced)

    found = collect_records(tmp_path)

    assert [p for p, _ in found.records] == sorted([good, hidden])
    assert [p for p, _ in found.shown] == [good]
    assert found.hidden == {"pittsburgh": 1}
    assert [p.path for p in found.problems] == sorted([broken, misplaced])
    messages = {p.path: p.message for p in found.problems}
    assert str(broken) in messages[broken] and "JSON" in messages[broken]
    expected = tmp_path / "pittsburgh" / "netvlad.run1" / "pitts30k.test.json"
    assert f"belongs at {expected}" in messages[misplaced]


def test_collect_rejects_a_missing_folder_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--records DIR"):
        collect_records(tmp_path / "nope")


def test_trained_here_name_rule_and_resolver() -> None:
    assert trained_here("pitts30k-train", "pitts30k", None)
    assert trained_here("pitts30k", "pitts30k", None)
    assert not trained_here("pitts250k-train", "pitts30k", None)
    assert not trained_here("", "pitts30k", None)
    assert not trained_here("msls-train", "pitts30k", None)
    # A resolver (the registries) wins over the name rule, and failures fall back to it.
    assert trained_here("gsv", "pitts30k", lambda name: "pitts30k")
    assert not trained_here("pitts30k-train", "pitts30k", lambda name: "other")

    def fail(name: str) -> str:
        raise KeyError(name)

    assert trained_here("pitts30k-train", "pitts30k", fail)


def test_records_frame_has_one_row_per_record_and_metric_columns(tmp_path: Path) -> None:
    a = make_record(method="netvlad", metrics={"R@1": 80.0, "R@10": 95.0, "mAP@5": 60.0})
    b = make_record(method="sare", protocol=PITTS_V2, metrics={"R@1": 70.5})
    frame = records_frame([(tmp_path / "a.json", a), (tmp_path / "b.json", b)])
    assert list(frame["method"]) == ["netvlad", "sare"]
    assert list(frame["protocol_version"]) == [1, 2]
    assert frame.columns[-3:].tolist() == ["R@1", "R@10", "mAP@5"]
    assert frame.loc[1, "R@1"] == 70.5
    assert math.isnan(frame.loc[1, "R@10"])
    assert frame.loc[0, "versions"] == "vpr-bench 0.1.0; vpr-bench-netvlad 0.1.0"
    assert frame.loc[0, "protocol_digest"] != frame.loc[1, "protocol_digest"]
