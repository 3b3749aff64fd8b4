"""``vpr-bench data check`` / ``prepare`` through the real CLI entry point."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vpr_bench.cli import main


def test_check_reports_missing_files_grouped(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dbstruct_writer: Callable[..., Path],
    jpeg_writer: Callable[..., Path],
) -> None:
    db = [f"000/000001_pitch1_yaw{i}.jpg" for i in range(1, 6)] + ["001/001000_pitch2_yaw1.jpg"]
    q = ["000/000001_pitch1_yaw1.jpg", "000/000002_pitch1_yaw1.jpg"]
    utm = np.zeros((len(db), 2))
    dbstruct_writer(tmp_path / "datasets" / "pitts30k_test.mat", "test", db, utm, q, utm[:2])
    for name in db[:4]:
        jpeg_writer(tmp_path / name)
    jpeg_writer(tmp_path / "queries_real" / q[0])
    code = main(["data", "check", "pitts30k-test", "--root", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "pitts30k-test: 6 database images, 2 queries" in out
    assert "DO NOT match the release (10000 database, 6816 queries)" in out
    assert "3 missing file(s) in 3 folder(s):" in out
    assert f"{tmp_path / '000'}/  1 missing: 000001_pitch1_yaw5.jpg" in out
    assert f"{tmp_path / '001'}/  1 missing: 001000_pitch2_yaw1.jpg" in out
    assert f"{tmp_path / 'queries_real' / '000'}/  1 missing: 000002_pitch1_yaw1.jpg" in out


def test_check_ok_and_decode(
    shared_data: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    corridor = shared_data / "vpr_bench" / "datasets" / "corridor"
    assert main(["data", "check", "vprbench-folder", "--root", str(corridor), "--decode"]) == 0
    assert "OK: all 222 files exist and decode" in capsys.readouterr().out
    (tmp_path / "database.csv").write_text("path,easting,northing\nbad.jpg,0,0\n")
    (tmp_path / "queries.csv").write_text("path,easting,northing\nbad.jpg,0,0\n")
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    assert main(["data", "check", "csv-folder", "--data-root", str(tmp_path), "--decode"]) == 1
    assert f"unreadable: {tmp_path / 'bad.jpg'}" in capsys.readouterr().out


def test_check_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VPR_BENCH_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["data", "check", "pitts30k-test"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No root folder for dataset pitts30k") and "--data-root" in err
    assert main(["data", "check", "pitts30k-test", "--root", str(tmp_path)]) == 1
    assert "Missing pitts30k_test.mat" in capsys.readouterr().err
    assert main(["data", "check", "pits30k-test", "--root", str(tmp_path)]) == 2
    assert "Did you mean: pitts30k-test" in capsys.readouterr().err
    assert main(["data"]) == 2


def test_help_texts_teach(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["data", "check", "--help"])
    out = capsys.readouterr().out
    assert "vpr-bench data check pitts30k-test --root /data/pitts" in out and "--decode" in out
    with pytest.raises(SystemExit):
        main(["data", "prepare", "--help"])
    assert "--size {tiny,small}" in capsys.readouterr().out


def test_prepare_then_check_synthcity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "prepare", "synthcity", "--size", "tiny", "--root", str(tmp_path)]) == 0
    assert f"written to {tmp_path / 'synthcity-tiny'}" in capsys.readouterr().out
    root = str(tmp_path / "synthcity-tiny")
    assert main(["data", "check", "synthcity-test", "--root", root]) == 0
    out = capsys.readouterr().out
    assert "OK: all" in out
    assert "query conditions: day 10, dusk 10, fog 10, night 10, rain 10, season 10" in out


def test_check_shows_tokyo_conditions_or_where_to_put_them(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dbstruct_writer: Callable[..., Path],
) -> None:
    db = ["03814/381418.231_3946450.428/JHVdmPpMNQcjBfR7qsWEtA_012_000.jpg"]
    queries = ["00010.jpg", "00011.jpg", "00012.jpg"]
    dbstruct_writer(
        tmp_path / "tokyo247.mat", "test", db, np.zeros((1, 2)), queries, np.zeros((3, 2))
    )
    main(["data", "check", "tokyo247-test", "--root", str(tmp_path)])
    wanted = tmp_path / "tokyo247_conditions.csv"
    assert f"query conditions: none labelled (for per-condition R@N add {wanted}" in (
        capsys.readouterr().out
    )
    wanted.write_text("name,condition\n00010.jpg,day\n00011.jpg,sunset\n00012.jpg,night\n")
    main(["data", "check", "tokyo247-test", "--root", str(tmp_path)])
    assert "query conditions: day 1, night 1, sunset 1" in capsys.readouterr().out
    wanted.write_text("name,condition\n00010.jpg,dusk\n")
    assert main(["data", "check", "tokyo247-test", "--root", str(tmp_path)]) == 1
    assert "line 2: the condition of '00010.jpg' is 'dusk'" in capsys.readouterr().err
