"""``vpr-bench run`` runs a method after the methods whose runs it reuses (MethodSpec.after)."""

from __future__ import annotations

from vpr_bench.pipeline.plan import order_methods
from vpr_bench.specs import MethodSpec


def _method(name: str, after: tuple[str, ...] = ()) -> MethodSpec:
    return MethodSpec(
        name, model="tiny-gem", loss="triplet", trainer="t", train_dataset="d", after=after
    )


def names(methods: list[MethodSpec]) -> list[str]:
    return [m.name for m in methods]


def test_a_method_moves_behind_the_ones_it_reuses() -> None:
    c2f = _method("disam", after=("disam-coarse", "disam-fine"))
    given = [c2f, _method("disam-coarse"), _method("disam-fine"), _method("other")]
    assert names(order_methods(given)) == ["disam-coarse", "disam-fine", "disam", "other"]


def test_absent_dependencies_and_plain_runs_keep_their_order() -> None:
    plain = [_method("b"), _method("a"), _method("c")]
    assert names(order_methods(plain)) == ["b", "a", "c"]
    alone = [_method("disam", after=("disam-coarse",)), _method("x")]
    assert names(order_methods(alone)) == ["disam", "x"]


def test_a_cycle_keeps_the_given_order() -> None:
    loop = [_method("a", after=("b",)), _method("b", after=("a",))]
    assert names(order_methods(loop)) == ["a", "b"]


def test_after_names_are_normalised() -> None:
    assert _method("m", after=("Disam_Coarse",)).after == ("disam-coarse",)
