"""Built-in evaluator registrations: names, lazy targets, no heavy imports."""

from __future__ import annotations

import subprocess
import sys

from vpr_bench.builtin.evaluators import vpr_bench_evaluators
from vpr_bench.eval import metrics
from vpr_bench.registry import resolve


def test_registered_evaluators_resolve_to_metric_functions() -> None:
    specs = {s.name: s for s in vpr_bench_evaluators()}
    assert set(specs) == {"recall", "map", "pr", "per-condition"}
    assert resolve(specs["recall"].compute) is metrics.recall_at_n
    assert resolve(specs["map"].compute) is metrics.map_at_n
    assert resolve(specs["pr"].compute) is metrics.pr_metrics
    assert resolve(specs["per-condition"].compute) is metrics.per_condition_recall
    assert specs["pr"].requires_knn == 1
    assert [m.name for m in specs["pr"].metrics] == ["R@100P", "PR-AUC"]
    assert all(isinstance(s.compute, str) for s in specs.values())


def test_registration_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from vpr_bench.builtin.evaluators import vpr_bench_evaluators\n"
        "list(vpr_bench_evaluators())\n"
        "heavy = [m for m in ('torch', 'numpy', 'faiss', 'scipy', 'h5py') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
