"""docs/writing-a-plugin.md runs as written: every command, every file, the outputs shown.

Console blocks: a ``$ `` line is a command (run with bash in one scratch folder, in order);
the lines after it are its expected output, matched line by line in order: each expected line
starts its output line, digits match any digits (numbers, times and run names differ between
machines), and a ``...`` line stands for any number of lines. A command exits 0 unless its
expected output has an ``error:`` line.
Python blocks starting with ``# file: PATH`` are written to PATH; other Python blocks run.
``pip install -e .`` installs into a temporary target instead of the environment, so the
generated plugins never leak into other tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


@dataclass
class Step:
    kind: str  # "command", "file" or "python"
    text: str
    expected: list[str] = field(default_factory=list)


def guide_steps(markdown: str) -> list[Step]:
    """The guide's steps in order."""
    steps: list[Step] = []
    for language, body in FENCE.findall(markdown):
        if language == "python":
            first = body.partition("\n")[0]
            if first.startswith("# file: "):
                steps.append(Step("file", body, [first[len("# file: ") :].strip()]))
            else:
                steps.append(Step("python", body))
        elif language == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    steps.append(Step("command", line[2:]))
                elif steps and steps[-1].kind == "command":
                    steps[-1].expected.append(line)
    return steps


def _pattern(line: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\d+", r"\\d+", re.escape(line.rstrip())))


def output_matches(expected: list[str], actual: str) -> str | None:
    """None when ``actual`` shows ``expected`` (see the module docstring), else what is missing."""
    lines = [line.rstrip() for line in actual.splitlines()]
    pos, gap = 0, False
    for line in expected:
        if line.strip() == "...":
            gap = True
            continue
        pattern = _pattern(line)
        while pos < len(lines) and not pattern.match(lines[pos]):
            if not gap:
                return f"expected {line!r}, got {lines[pos]!r}"
            pos += 1
        if pos == len(lines):
            return f"expected {line!r} (not found)"
        pos, gap = pos + 1, False
    return None


def _shell(command: str, site: Path) -> str:
    python = sys.executable
    pip = f"{python} -m pip install -q --no-deps --no-build-isolation --target {site} ."
    command = command.replace("pip install -e .", pip)
    command = re.sub(r"\bvpr-bench\b", f"{python} -m vpr_bench", command)
    return re.sub(r"(^|&& )python ", rf"\1{python} ", command)


def test_output_matching_rules() -> None:
    assert output_matches(["R@1 8.3", "...", "done"], "R@1 12.5\nnoise\ndone\n") is None
    assert output_matches(["a", "b"], "a\nx\nb") is not None  # no "..." between: consecutive
    assert output_matches(["R@1 8.3"], "mAP@1 8.3") is not None  # digits only are free


def test_the_guide_runs_as_written(tmp_path: Path) -> None:
    work, site = tmp_path / "work", tmp_path / "site"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), *sys.path[1:]]),
        "VPR_BENCH_CACHE": str(tmp_path / "cache"),
    }
    env.pop("VPR_BENCH_PLUGINS", None)
    steps = guide_steps(GUIDE.read_text(encoding="utf-8"))
    assert sum(s.kind == "command" for s in steps) >= 12 and any(s.kind == "file" for s in steps)
    for step in steps:
        if step.kind == "file":
            target = work / step.expected[0]
            assert target.exists(), f"the guide edits {target}, which the steps before did not make"
            target.write_text(step.text, encoding="utf-8")
            continue
        if step.kind == "python":
            done = subprocess.run(
                [sys.executable, "-c", step.text], cwd=work, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, f"python block failed:\n{step.text}\n{done.stderr}"
            continue
        done = subprocess.run(
            ["bash", "-c", _shell(step.text, site)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = done.stdout + done.stderr
        wants_error = any(line.startswith("error:") for line in step.expected)
        assert (done.returncode != 0) == wants_error, (
            f"$ {step.text}\nexit {done.returncode}\n{output}"
        )
        problem = output_matches(step.expected, output)
        assert problem is None, f"$ {step.text}\n{problem}\n--- output ---\n{output}"
