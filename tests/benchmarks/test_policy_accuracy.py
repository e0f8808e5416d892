"""benchmarks/policy_accuracy.py: the pass@N column is pass@N for any N, an accuracy of 0
renders, another split does not overwrite the test table, bad counts are refused before any
model builds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import policy_accuracy  # noqa: E402
from bench_cli import refused  # noqa: E402

from search.metrics import pass_at_k  # noqa: E402
from search.types import Continuation, FinishReason, Generation, Prefix, Until  # noqa: E402


def test_pass_curve_ends_at_the_requested_samples() -> None:
    curve = policy_accuracy.pass_curve([1, 0], 3)
    assert list(curve) == [1, 2, 3]
    assert curve[3] == pytest.approx(0.5)  # 1 of 3 right: pass@3 is 1; the other problem 0
    assert curve[2] == pytest.approx(pass_at_k(3, 1, 2) / 2)
    assert list(policy_accuracy.pass_curve([5], 16)) == [1, 2, 4, 8, 16]


def test_test_split_keeps_the_names_readme_reads() -> None:
    assert policy_accuracy.output_names("test") == (
        "policy_accuracy_test.json",
        "policy_accuracy.md",
    )
    assert policy_accuracy.output_names("longest") == (
        "policy_accuracy_longest.json",
        "policy_accuracy_longest.md",
    )


class WrongPolicy:
    """Every continuation answers -1 in one step: no problem is ever solved."""

    def generate(self, prefixes: list[Prefix], n: int, until: Until) -> list[Generation]:
        wrong = "The answer is \\boxed{-1}."
        continuation = Continuation(wrong, (wrong,), FinishReason.eos, 6)
        return [Generation(1, (continuation,) * n) for _ in prefixes]


def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str) -> None:
    def fake_generator(model: str, seed: int, temperature: float, **_: Any) -> WrongPolicy:
        return WrongPolicy()

    monkeypatch.setattr(policy_accuracy, "RESULTS", tmp_path)
    monkeypatch.setattr(policy_accuracy, "build_generator", fake_generator)
    monkeypatch.setattr(sys, "argv", ["policy_accuracy.py", *argv])
    policy_accuracy.main()


def test_zero_accuracy_renders_and_names_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run(monkeypatch, tmp_path, "--problems", "2", "--samples", "3", "--split", "longest")
    text = capsys.readouterr().out
    assert "| split | greedy | single sample (T=1) | pass@3 | pass@3 / single |" in text
    assert "| longest | 0.000 | 0.000 | 0.000 | - |" in text
    assert "k=1: 0.000, k=2: 0.000, k=3: 0.000" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "policy_accuracy_longest.json",
        "policy_accuracy_longest.md",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--problems", "0"], "expected --problems >= 1, got 0"),
        (["--samples", "-1"], "expected --samples >= 1, got -1"),
        (["--split", "tset"], "invalid choice"),
    ],
)
def test_bad_counts_are_refused_before_any_model_builds(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setattr(policy_accuracy, "RESULTS", tmp_path)
    assert message in refused(monkeypatch, capsys, policy_accuracy, argv, "build_generator")
