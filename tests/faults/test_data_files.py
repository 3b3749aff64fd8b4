"""Faults in dataset files: ``data check`` must neither run, trust nor write them."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.faults.conftest import files_under
from vpr_bench.cli import main


class _RunsShell:
    """An object whose unpickling calls ``os.system`` (what a crafted .npy would do)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


def _write_pickled_npy(path: Path, payload: object) -> None:
    """A .npy v1.0 file with an object header and ``payload`` pickled after it."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "|O", "fortran_order": False, "shape": (111, 2)}
        )
        pickle.dump(payload, handle, protocol=2)


def test_npy_pickle_that_runs_code_is_refused(
    corridor_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ground_truth_new.npy whose pickle calls os.system is refused, naming the file."""
    marker = tmp_path / "pwned"
    gt = corridor_copy / "ground_truth_new.npy"
    _write_pickled_npy(gt, _RunsShell(f"touch {marker}"))
    code = main(["data", "check", "vprbench-folder", "--root", str(corridor_copy)])
    captured = capsys.readouterr()
    assert code == 1
    assert not marker.exists()
    assert "OK" not in captured.out
    message = captured.err.strip()
    assert "\n" not in message
    assert str(gt) in message and "posix.system" in message
    assert "original ground_truth_new.npy" in message


def test_real_ground_truth_still_loads(
    corridor_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real corridor ground truth (a Python 2 object pickle) passes the restricted reader."""
    assert main(["data", "check", "vprbench-folder", "--root", str(corridor_copy)]) == 0
    assert "OK: all 222 files exist" in capsys.readouterr().out


def test_check_of_a_missing_synthcity_writes_nothing(
    corridor_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`data check synthcity-test --root <other folder>` says how to generate it, writes nothing."""
    before = files_under(corridor_copy)
    code = main(["data", "check", "synthcity-test", "--root", str(corridor_copy)])
    captured = capsys.readouterr()
    assert code == 1
    assert "OK" not in captured.out
    message = captured.err.strip()
    assert "\n" not in message
    assert f"{corridor_copy} holds no synthcity generation" in message
    assert f"vpr-bench data prepare synthcity --root {corridor_copy}" in message
    assert files_under(corridor_copy) == before
    assert not (corridor_copy / "synthcity-small").exists()


def test_check_of_a_generated_synthcity_still_passes(
    tiny_city: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A generated city (its own folder) is checked read-only and passes."""
    before = files_under(tiny_city)
    assert main(["data", "check", "synthcity-test", "--root", str(tiny_city)]) == 0
    assert "OK" in capsys.readouterr().out
    assert files_under(tiny_city) == before


def test_nan_position_in_a_mat_is_reported(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NaN in utmQ of a NetVLAD .mat is reported with file, field and index."""
    from scipy.io import loadmat, savemat

    raw = loadmat(shared_data / "netvlad_datasets_mat" / "pitts30k_test.mat")
    raw["dbStruct"][0, 0]["utmQ"][1, 7] = np.nan
    mat = tmp_path / "datasets" / "pitts30k_test.mat"
    mat.parent.mkdir()
    savemat(str(mat), {"dbStruct": raw["dbStruct"]})
    code = main(["data", "check", "pitts30k-test", "--root", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "OK" not in captured.out
    message = captured.err.strip()
    assert "\n" not in message
    assert f"{mat}: utmQ column 7 (0-based; " in message
    assert "not a finite position (1 such column(s))" in message


@pytest.fixture
def csv_folder(corridor_copy: Path) -> Path:
    """A csv-folder dataset over the corridor images: database.csv and queries.csv."""
    for name, folder in (("database.csv", "ref"), ("queries.csv", "query")):
        lines = ["path,easting,northing,condition"]
        for i, image in enumerate(sorted((corridor_copy / folder).iterdir())[:6]):
            lines.append(f"{folder}/{image.name},{10.0 * i},0,day")
        (corridor_copy / name).write_text("\n".join(lines) + "\n")
    return corridor_copy


def test_csv_row_with_extra_fields_is_read(
    csv_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Extra trailing fields in a row are ignored, as the format says, not an AttributeError."""
    database = csv_folder / "database.csv"
    lines = database.read_text().splitlines()
    lines[2] += ",taken by phone,42"
    database.write_text("\n".join(lines) + "\n")
    assert main(["data", "check", "csv-folder", "--root", str(csv_folder)]) == 0
    captured = capsys.readouterr()
    assert "OK" in captured.out and captured.err == ""


def test_csv_with_a_utf8_bom_is_read(csv_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV saved with a byte-order mark (spreadsheet 'CSV UTF-8') has its `path` column."""
    queries = csv_folder / "queries.csv"
    queries.write_bytes(b"\xef\xbb\xbf" + queries.read_bytes())
    assert main(["data", "check", "csv-folder", "--root", str(csv_folder)]) == 0
    captured = capsys.readouterr()
    assert "OK" in captured.out and captured.err == ""


def test_csv_that_is_not_utf8_is_named(
    csv_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Latin-1 CSV is one line naming the file and the encoding to save it in."""
    queries = csv_folder / "queries.csv"
    queries.write_bytes(queries.read_bytes().replace(b",day", b",d\xe9j\xe0 vu"))
    assert main(["data", "check", "csv-folder", "--root", str(csv_folder)]) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert message.startswith(f"error: {queries} is not UTF-8 text (")
    assert message.endswith("save it as UTF-8 CSV (spreadsheet programs offer 'CSV UTF-8').")
