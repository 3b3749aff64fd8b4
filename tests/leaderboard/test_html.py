"""The static leaderboard site (``leaderboard build --html``), read as files and in Chromium."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

import pytest
from browser import Browser, find_chromium
from record_factory import PITTS_V2, put

from vpr_bench.leaderboard.build import build_leaderboards, stale_files, write_outputs
from vpr_bench.registry import Registries
from vpr_bench.specs import MethodSpec, PaperResult


class Links(HTMLParser):
    """Every href/src of a page, with the text of each link."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[tuple[str, str]] = []
        self.srcs: list[str] = []
        self._open: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self._open, self._text = values["href"], ""
        if tag in ("img", "script") and values.get("src"):
            self.srcs.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.srcs.append(str(values["href"]))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.hrefs.append((self._open, self._text))
            self._open = None


def _registries() -> Registries:
    registries = Registries()
    method = MethodSpec(
        name="netvlad",
        model="tiny",
        loss="triplet",
        trainer="tuples",
        train_dataset="pitts30k-train",
        paper=(PaperResult("pitts30k-test", {"R@1": 85.6, "R@5": 92.9}, "ClusVPR Table I"),),
    )
    registries.methods.add("netvlad", method, "test-plugin", "vpr-bench-test")
    return registries


def _records(root: Path) -> Path:
    records = root / "records"
    put(records, method="netvlad", tag="run1", metrics={"R@1": 80.0, "R@5": 90.0, "R@10": 93.0})
    put(records, method="sare", tag="run2", metrics={"R@1": 88.0, "R@5": 89.0, "R@10": 99.0})
    put(
        records,
        method="<script>alert(1)</script>",
        tag="x",
        trained_on="pitts30k-train",
        device='gpu" onmouseover="alert(2)',
        metrics={"R@1": 84.5, "R@5": 95.5, "R@10": 96.0},
    )
    put(records, method="netvlad", tag="v2", protocol=PITTS_V2, metrics={"R@1": 70.0})
    put(records, method="netvlad", tag="t", benchmark="tokyo", dataset="tokyo247", trained_on="")
    return records


def _site(tmp_path: Path, plots: bool = False) -> Path:
    out = tmp_path / "lb"
    result = build_leaderboards(_records(tmp_path), _registries(), plots=plots, html_dir=out)
    assert not result.problems
    write_outputs(out, result)
    return out / "site"


def test_site_has_an_index_and_one_page_per_benchmark(tmp_path: Path) -> None:
    site = _site(tmp_path)
    assert sorted(p.name for p in site.iterdir()) == [
        "index.html",
        "pittsburgh.html",
        "site.css",
        "site.js",
        "tokyo.html",
    ]
    index = Links()
    index.feed((site / "index.html").read_text(encoding="utf-8"))
    assert index.hrefs == [("pittsburgh.html", "pittsburgh"), ("tokyo.html", "tokyo")]
    assert "2 tables, 4 results" in (site / "index.html").read_text(encoding="utf-8")


def test_every_number_links_to_its_record_and_every_asset_exists(tmp_path: Path) -> None:
    site = _site(tmp_path, plots=True)
    page = (site / "pittsburgh.html").read_text(encoding="utf-8")
    links = Links()
    links.feed(page)
    numbers = [(href, text) for href, text in links.hrefs if re.fullmatch(r"[\d.]+", text)]
    # 4 rows of ours (3 with R@1/5/10, one v2 row with R@1 only); paper numbers have no link.
    assert len(numbers) == 3 * 3 + 1
    for href, _ in numbers:
        target = (site / PurePosixPath(href)).resolve()
        assert target.is_file() and target.suffix == ".json", href
    sare = {text for href, text in numbers if "/sare.run2/" in href}
    assert sare == {"88.0", "89.0", "99.0"}
    assert "85.6" in page and "85.6</a>" not in page  # the paper row: shown, not linked
    for src in links.srcs:
        assert (site / PurePosixPath(src)).resolve().is_file(), src
    assert any(src.endswith(".recall.svg") for src in links.srcs)


def test_plugin_text_is_escaped(tmp_path: Path) -> None:
    page = (_site(tmp_path) / "pittsburgh.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and 'onmouseover="alert' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "gpu&quot; onmouseover=&quot;alert(2)" in page


def test_site_files_are_checked_and_obsolete_pages_removed(tmp_path: Path) -> None:
    site = _site(tmp_path)
    out = site.parent
    records = tmp_path / "records"
    result = build_leaderboards(records, _registries(), plots=False, html_dir=out)
    assert stale_files(out, result) == []
    (site / "pittsburgh.html").write_text("edited", encoding="utf-8")
    for path in records.glob("tokyo/**/*.json"):
        path.unlink()
    result = build_leaderboards(records, _registries(), plots=False, html_dir=out)
    assert stale_files(out, result) == [
        "site/index.html (differs)",
        "site/pittsburgh.html (differs)",
        "site/tokyo.html (no longer generated; would be removed)",
        "tokyo.md (no longer generated; would be removed)",
    ]
    written, removed = write_outputs(out, result)
    assert "site/pittsburgh.html" in written and "site/tokyo.html" in removed
    assert not (site / "tokyo.html").exists()
    # Without --html the site is neither built nor checked nor removed.
    plain = build_leaderboards(records, _registries(), plots=False)
    assert not any(name.startswith("site/") for name in plain.files)
    assert stale_files(out, plain) == []


CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on PATH (.ci/run installs the 'chromium' system package; or set "
    "VPR_BENCH_CHROMIUM)",
)

_COLUMN = """(() => {{
  const table = document.querySelectorAll("table.board")[{table}];
  const names = Array.from(table.tHead.rows[0].cells).map(c => c.textContent.trim());
  const at = names.indexOf({name!r});
  return Array.from(table.tBodies[0].rows)
    .filter(r => !r.hidden)
    .map(r => r.cells[at].textContent.trim());
}})()"""


def _column(browser: Browser, name: str, table: int = 0) -> list[str]:
    values = browser.evaluate(_COLUMN.format(table=table, name=name))
    assert isinstance(values, list)
    return [str(v) for v in values]


@needs_chromium
def test_pages_load_sort_and_filter_in_chromium(tmp_path: Path) -> None:
    site = _site(tmp_path, plots=True)
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as browser:
        for page in ("index.html", "pittsburgh.html", "tokyo.html"):
            browser.open(site / page)
            assert browser.evaluate("document.documentElement.dataset.ready || ''") == "true"
        browser.open(site / "pittsburgh.html")
        # As generated: ours by R@1 descending, then the paper row.
        assert _column(browser, "R@1") == ["88.0", "84.5", "80.0", "85.6"]
        browser.click("table.board th:nth-child(6) button")  # R@5: numbers high to low first
        assert _column(browser, "R@5") == ["95.5", "92.9", "90.0", "89.0"]
        assert "R%405%3Adesc" in browser.evaluate("location.hash") or "R@5:desc" in (
            browser.evaluate("decodeURIComponent(location.hash)")
        )
        browser.click("table.board th:nth-child(6) button")  # again: reversed
        assert _column(browser, "R@5") == ["89.0", "90.0", "92.9", "95.5"]
        browser.click("table.board th:nth-child(2) button")  # text: A to Z
        assert _column(browser, "method") == [
            "<script>alert(1)</script>",
            "netvlad",
            "netvlad",
            "sare",
        ]
        # R@10 of the paper row is missing: it stays last in both directions.
        browser.click("table.board th:nth-child(7) button")
        assert _column(browser, "R@10") == ["99.0", "96.0", "93.0", "—"]
        browser.click("table.board th:nth-child(7) button")
        assert _column(browser, "R@10") == ["93.0", "96.0", "99.0", "—"]
        # Filters: trained-on hides rows, protocol hides tables; the URL keeps both.
        browser.evaluate(
            "(() => { const s = document.getElementById('filter-trained');"
            " s.value = 'pitts30k-train'; s.dispatchEvent(new Event('change')); })()"
        )
        assert _column(browser, "method") == ["<script>alert(1)</script>"]
        browser.evaluate(
            "(() => { const s = document.getElementById('filter-protocol');"
            " s.value = 'pitts30k-test@v2'; s.dispatchEvent(new Event('change')); })()"
        )
        hidden = browser.evaluate(
            "Array.from(document.querySelectorAll('section.table')).map(s => s.hidden)"
        )
        assert hidden == [True, False]
        # A linked view opens as it was left.
        browser.open(site / "pittsburgh.html", "sort=R%401%3Aasc")
        assert _column(browser, "R@1") == ["80.0", "84.5", "85.6", "88.0"]
        assert browser.errors() == []
        assert browser.evaluate("document.documentElement.dataset.errors || ''") == ""
