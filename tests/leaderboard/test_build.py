from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from record_factory import PITTS_V1, PITTS_V2, SYNTH, make_record, put

from vpr_bench.leaderboard.build import build_leaderboards, stale_files, write_outputs
from vpr_bench.leaderboard.render import GENERATED_MARKER
from vpr_bench.registry import Registries
from vpr_bench.specs import Checkpoint, MethodSpec, PaperResult, RemoteFile


def _registries(*methods: MethodSpec) -> Registries:
    registries = Registries()
    for method in methods:
        registries.methods.add(method.name, method, "test-plugin", "vpr-bench-test")
    return registries


def _method(name: str, *paper: PaperResult, checkpoints: tuple[Checkpoint, ...] = ()) -> MethodSpec:
    return MethodSpec(
        name=name,
        model="tiny",
        loss="triplet",
        trainer="tuples",
        train_dataset="pitts30k-train",
        paper=paper,
        checkpoints=checkpoints,
    )


def _sections(page: str) -> dict[str, list[list[str]]]:
    """``{heading: [cells of each table row]}`` (header and separator rows dropped)."""
    found: dict[str, list[list[str]]] = {}
    heading = ""
    for line in page.splitlines():
        if line.startswith("## "):
            heading = line[3:]
            found[heading] = []
        elif line.startswith("|") and heading:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if cells[0] != "#" and not set(cells[0]) <= set(":-"):
                found[heading].append(cells)
    return found


def _page(tmp_path: Path, registries: Registries | None = None, name: str = "pittsburgh") -> str:
    result = build_leaderboards(tmp_path / "records", registries, plots=False)
    assert not result.problems
    return result.files[f"{name}.md"].decode("utf-8")


def test_one_page_per_benchmark(tmp_path: Path) -> None:
    records = tmp_path / "records"
    put(records, method="netvlad")
    put(records, method="sare", benchmark="synthcity", dataset="synthcity", protocol=SYNTH)
    result = build_leaderboards(records, None, plots=False)
    assert sorted(result.files) == ["pittsburgh.md", "synthcity.md"]
    pitts = result.files["pittsburgh.md"].decode()
    synth = result.files["synthcity.md"].decode()
    assert pitts.startswith(GENERATED_MARKER + "\n")
    assert "`vpr-bench leaderboard build`" in pitts
    assert "| netvlad " in pitts and "sare" not in pitts.split("## ", 1)[1]
    assert "| sare " in synth and "| netvlad " not in synth
    assert result.shown == 2 and result.hidden == 0


def test_two_protocol_versions_of_one_dataset_get_two_sections(tmp_path: Path) -> None:
    records = tmp_path / "records"
    put(records, method="netvlad", tag="a", protocol=PITTS_V1, metrics={"R@1": 80.0})
    put(records, method="sare", tag="b", protocol=PITTS_V2, metrics={"R@1": 70.0})
    sections = _sections(_page(tmp_path))
    assert list(sections) == [
        "pitts30k-test@v1 — pitts30k (data v1, unidentified data) / test",
        "pitts30k-test@v2 — pitts30k (data v1, unidentified data) / test",
    ]
    assert [
        row[1]
        for row in sections["pitts30k-test@v1 — pitts30k (data v1, unidentified data) / test"]
    ] == ["netvlad"]
    assert [
        row[1]
        for row in sections["pitts30k-test@v2 — pitts30k (data v1, unidentified data) / test"]
    ] == ["sare"]
    page = _page(tmp_path)
    assert "queries shorter side 480" in page and f"digest {PITTS_V2.digest()}" in page


def test_two_dataset_versions_under_one_protocol_get_two_sections(tmp_path: Path) -> None:
    # A regenerated synthcity (new generator version) is new data under the same protocol:
    # its numbers must not be ranked against the old generation's.
    records = tmp_path / "records"
    put(records, method="netvlad", tag="old", metrics={"R@1": 90.0})
    put(records, method="sare", tag="new", dataset_version=2, metrics={"R@1": 40.0})
    sections = _sections(_page(tmp_path))
    assert list(sections) == [
        "pitts30k-test@v1 — pitts30k (data v1, unidentified data) / test",
        "pitts30k-test@v1 — pitts30k (data v2, unidentified data) / test",
    ]
    assert [
        row[1]
        for row in sections["pitts30k-test@v1 — pitts30k (data v2, unidentified data) / test"]
    ] == ["sare"]
    assert sections["pitts30k-test@v1 — pitts30k (data v2, unidentified data) / test"][0][0] == "1"


def test_same_key_different_digest_is_not_merged(tmp_path: Path) -> None:
    records = tmp_path / "records"
    other = replace(PITTS_V1, radius_m=10.0)  # same name@v1, different settings
    put(records, method="netvlad", protocol=PITTS_V1)
    put(records, method="sare", protocol=other)
    headings = list(_sections(_page(tmp_path)))
    assert sorted(headings) == sorted(
        f"pitts30k-test@v1 — pitts30k (data v1, unidentified data) / test (digest {p.digest()})"
        for p in (PITTS_V1, other)
    )


def test_rows_sorted_by_r1_with_stable_name_tie_break(tmp_path: Path) -> None:
    records = tmp_path / "records"
    put(records, method="zeta", metrics={"R@1": 80.0})
    put(records, method="alpha", metrics={"R@1": 80.0})
    put(records, method="best", metrics={"R@1": 91.25, "R@5": 95.0})
    put(records, method="nor1", metrics={"R@5": 99.0})
    rows = next(iter(_sections(_page(tmp_path)).values()))
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("1", "best", "91.2"),
        ("2", "alpha", "80.0"),
        ("3", "zeta", "80.0"),
        ("4", "nor1", "—"),
    ]


def test_dagger_marks_weights_tested_on_their_training_dataset(tmp_path: Path) -> None:
    records = tmp_path / "records"
    put(records, method="netvlad", trained_on="pitts30k-train", metrics={"R@1": 90.0})
    put(records, method="sare", trained_on="msls-train", metrics={"R@1": 80.0})
    put(records, method="tiny", trained_on="", metrics={"R@1": 10.0})
    rows = next(iter(_sections(_page(tmp_path)).values()))
    assert [(r[1], r[3]) for r in rows] == [
        ("netvlad", "pitts30k-train †"),
        ("sare", "msls-train"),
        ("tiny", "—"),
    ]


def test_paper_rows_and_delta(tmp_path: Path) -> None:
    records = tmp_path / "records"
    put(records, method="netvlad", tag="run1", metrics={"R@1": 80.0, "R@5": 90.0})
    put(records, method="sare", tag="official", metrics={"R@1": 88.0})
    put(records, method="sare", tag="v2", protocol=PITTS_V2, metrics={"R@1": 70.0})
    netvlad = _method(
        "netvlad",
        PaperResult("pitts30k-test", {"R@1": 85.6, "R@5": 92.9}, "ClusVPR Table I", "VGG16"),
        PaperResult("tokyo247", {"R@1": 73.3}, "ClusVPR Table I"),
    )
    checkpoint = Checkpoint(
        "official",
        RemoteFile("https://example.org/sare.pth"),
        trained_on="pitts30k-train",
        reported=(PaperResult("pitts30k-test", {"R@1": 87.5}, "model zoo"),),
    )
    sare = _method(
        "sare", PaperResult("pitts30k-test", {"R@1": 87.2}, "paper"), checkpoints=(checkpoint,)
    )
    page = _page(tmp_path, _registries(netvlad, sare))
    sections = _sections(page)
    v1 = sections["pitts30k-test@v1 — pitts30k (data v1, unidentified data) / test"]
    header = next(line for line in page.splitlines() if line.startswith("|     #"))
    assert "Δ R@1" in header
    delta_at = [c.strip() for c in header.split("|")[1:-1]].index("Δ R@1")
    by_row = {(r[0], r[1], r[2]): r for r in v1}
    # Ours minus paper; the checkpoint's own reported number wins over the method's paper row.
    assert by_row[("1", "sare", "official / paper")][delta_at] == "+0.5"
    assert by_row[("2", "netvlad", "run1 / paper")][delta_at] == "-5.6"
    paper_rows = [r for r in v1 if r[0] == "paper"]
    assert [(r[1], r[2], r[3], r[4], r[-1]) for r in paper_rows] == [
        ("sare", "official", "pitts30k-train †", "87.5", "paper: model zoo"),
        ("sare", "—", "—", "87.2", "paper: paper"),
        ("netvlad", "VGG16", "—", "85.6", "paper: ClusVPR Table I"),
    ]
    # The tokyo247 paper number has no table here; the v2 table gets the pitts30k-test rows.
    assert "73.3" not in page
    v2 = sections["pitts30k-test@v2 — pitts30k (data v1, unidentified data) / test"]
    assert [r[0] for r in v2] == ["1", "paper", "paper", "paper"]
    assert v2[0][delta_at] == "-17.2"  # v2 record of tag v2: no checkpoint number, method's


def test_plugin_text_is_escaped_and_cannot_inject(tmp_path: Path) -> None:
    records = tmp_path / "records"
    put(records, method="<script>", tag="x", device="gpu|<b>", metrics={"R@1": 90.0})
    put(records, method="a|b", tag="y", metrics={"R@1": 80.0})
    evil = _method(
        "evil",
        PaperResult(
            "pitts30k-test", {"R@1": 1.0}, "src | *bold* _u_ `tick`\n| new | row |<i>x</i>"
        ),
    )
    page = _page(tmp_path, _registries(evil))
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    rows = next(iter(_sections(page).values()))
    widths = {len(r) for r in rows}
    assert len(widths) == 1  # no escaped text split or added a cell
    assert [r[1] for r in rows] == ["&lt;script&gt;", "a\\|b", "evil"]
    assert rows[2][-1] == (
        "paper: src \\| \\*bold\\* \\_u\\_ \\`tick\\` \\| new \\| row \\|&lt;i&gt;x&lt;/i&gt;"
    )
    assert "123.4 (gpu\\|&lt;b&gt;)" in rows[0]


def test_hidden_records_are_counted_never_shown(tmp_path: Path) -> None:
    records = tmp_path / "records"
    put(records, method="netvlad")
    put(records, method="tiny", leaderboard=False, metrics={"R@1": 99.0})
    put(records, method="tiny", tag="b", leaderboard=False, metrics={"R@1": 98.0})
    put(records, benchmark="only-hidden", method="tiny", leaderboard=False)
    result = build_leaderboards(records, None, plots=False)
    page = result.files["pittsburgh.md"].decode()
    assert "tiny" not in page and "99.0" not in page
    assert "Note: 2 records of test-only models (leaderboard=False) hidden." in page
    hidden_only = result.files["only-hidden.md"].decode()
    assert "No records to show yet." in hidden_only and "Note: 1 record of" in hidden_only
    assert result.hidden == 3 and result.shown == 1


def test_build_is_byte_identical_and_independent_of_record_times(tmp_path: Path) -> None:
    records = tmp_path / "records"
    put(records, method="netvlad", per_condition={"night": {"R@1": 40.0}, "day": {"R@1": 90.0}})
    put(records, method="sare", metrics={"R@1": 85.0, "R@5": 92.0, "R@10": 96.0})
    first = build_leaderboards(records, None)
    second = build_leaderboards(records, None)
    assert first.files == second.files
    assert any(name.endswith(".conditions.svg") for name in first.files)
    put(
        records,
        method="sare",
        metrics={"R@1": 85.0, "R@5": 92.0, "R@10": 96.0},
        time_utc="2030-05-05T00:00:00Z",
    )
    assert build_leaderboards(records, None).files == first.files


def test_stale_files_and_write_outputs(tmp_path: Path) -> None:
    records, out = tmp_path / "records", tmp_path / "out"
    put(records, method="netvlad")
    result = build_leaderboards(records, None, plots=False)
    assert stale_files(out, result) == ["pittsburgh.md (missing)"]
    assert write_outputs(out, result) == (["pittsburgh.md"], [])
    assert stale_files(out, result) == []
    assert write_outputs(out, result) == ([], [])  # unchanged files are not rewritten
    (out / "README.md").write_text("hand-written\n", encoding="utf-8")
    (out / "gone.md").write_text(GENERATED_MARKER + "\nold\n", encoding="utf-8")
    assert stale_files(out, result) == ["gone.md (no longer generated; would be removed)"]
    assert write_outputs(out, result) == ([], ["gone.md"])
    assert (out / "README.md").read_text(encoding="utf-8") == "hand-written\n"


def test_results_on_different_data_never_share_a_table(tmp_path: Path) -> None:
    """Two VPR-Bench folders are one dataset to the registry: their records sit in different
    files and tables, each named after its folder."""
    from vpr_bench.records import record_path, write_record

    root = tmp_path / "records"
    for name, digest, r1 in (("corridor", "1" * 16, 60.0), ("office", "2" * 16, 40.0)):
        record = replace(
            make_record(metrics={"R@1": r1}), data={"name": name, "digest": digest, "reader": ""}
        )
        path = write_record(record, record_path(root, record))
        assert path.name == f"pitts30k.test.{name}-{digest[:8]}.json"
    page = build_leaderboards(root, command="x", plots=False).files["pittsburgh.md"].decode()
    assert "pitts30k (data v1, corridor 11111111) / test" in page
    assert "pitts30k (data v1, office 22222222) / test" in page


def test_untrained_baselines_say_whose_config_they_were_made_with(tmp_path: Path) -> None:
    """Two untrained rows of one model (DISAM's coarse and fine configs) are told apart."""
    from vpr_bench.records import record_path, write_record

    records = tmp_path / "records"
    for tag, config_of, r1 in (
        ("untrained", "disam-coarse", 8.0),
        ("untrained-2213706e", "disam-fine", 7.2),
        ("untrained-0a1b2c3d", "disam", 6.0),  # its own method's config: nothing to add
    ):
        record = replace(
            make_record(method="disam", tag=tag, trained_on="", metrics={"R@1": r1}),
            config={"method": config_of, "seed": 0},
        )
        write_record(record, record_path(records, record))
    trained = replace(
        make_record(method="disam", tag="run1", metrics={"R@1": 9.0}),
        weights_sha256="ab" * 32,
        config={"method": "disam-coarse"},
    )
    assert trained.baseline_of == ""
    write_record(trained, record_path(records, trained))
    rows = next(iter(_sections(_page(tmp_path)).values()))
    assert [r[2] for r in rows] == [
        "run1 / paper",
        "untrained / paper / config of disam-coarse",
        "untrained-2213706e / paper / config of disam-fine",
        "untrained-0a1b2c3d / paper",
    ]
