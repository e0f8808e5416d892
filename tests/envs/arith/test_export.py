"""search.envs.arith.export: every corruption against the checker, the correct share, both error
kinds, the policy source on the fake generator, and the CLI end to end."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from search.envs.arith.checker import ErrorKind, check_solution
from search.envs.arith.export import (
    Corruption,
    ExportConfig,
    Source,
    corrupt_solution,
    corrupted_records,
    export_processbench,
    policy_records,
)
from search.envs.arith.fakes import FakeGenerator
from search.envs.arith.world import make_split
from search.types import Problem

PROBLEMS = make_split("test", size=60)
BY_ID: dict[str, Problem] = {p.id: p for p in PROBLEMS}

# (checker kind, final answer right) that each corruption must give.
EXPECTED = {
    Corruption.arithmetic_slip: (ErrorKind.arithmetic, False),
    Corruption.slip_recovered: (ErrorKind.arithmetic, True),
    Corruption.wrong_operand: (ErrorKind.logic, None),  # the answer may happen to be right
    Corruption.wrong_operation: (ErrorKind.logic, None),
    Corruption.skipped_step: (ErrorKind.logic, True),
    Corruption.wrong_answer: (ErrorKind.wrong_answer, False),
}


def assert_true_labels(records: list[dict]) -> None:
    for record in records:
        check = check_solution(BY_ID[record["id"]], record["steps"])
        assert record["label"] == check.first_error
        assert record["final_answer_correct"] == check.answer_correct
        assert record["error_kind"] == (None if check.kind is None else check.kind.value)
        assert record["problem"] == BY_ID[record["id"]].question


@pytest.mark.parametrize("corruption", list(Corruption))
def test_each_corruption_gives_its_error(corruption: Corruption) -> None:
    rng = random.Random(7)
    kind, answer_right = EXPECTED[corruption]
    for problem in PROBLEMS[:30]:
        steps = corrupt_solution(problem, corruption, rng)
        check = check_solution(problem, steps)
        assert check.first_error >= 0 and check.kind is kind, (corruption, steps)
        if answer_right is not None:
            assert check.answer_correct is answer_right, (corruption, steps)


def test_corrupted_records_share_kinds_and_labels() -> None:
    records = corrupted_records(PROBLEMS, correct_share=0.5, seed=3)
    assert len(records) == 60 and [r["id"] for r in records] == [p.id for p in PROBLEMS]
    assert sum(r["label"] == -1 for r in records) == 30
    assert_true_labels(records)
    kinds = {r["error_kind"] for r in records}
    assert {"arithmetic", "logic"} <= kinds
    assert any(r["final_answer_correct"] and r["label"] != -1 for r in records)  # rawp
    for record in records:
        assert (record["corruption"] is None) == (record["label"] == -1)
        assert 0 <= record["label"] < len(record["steps"]) or record["label"] == -1
    assert records == corrupted_records(PROBLEMS, correct_share=0.5, seed=3)
    assert records != corrupted_records(PROBLEMS, correct_share=0.5, seed=4)
    only = corrupted_records(PROBLEMS, 0.25, [Corruption.wrong_answer], seed=0)
    assert sum(r["label"] == -1 for r in only) == 15
    assert {r["error_kind"] for r in only} == {None, "wrong_answer"}


def test_policy_source_on_the_fake_generator() -> None:
    # About half of the fake's solutions are right, so 8 samples nearly always hold both.
    generator = FakeGenerator(seed=0, error_rate=0.2)
    mostly_right, dropped = policy_records(
        PROBLEMS[:24],
        generator,
        "fake",
        correct_share=1.0,
        samples_per_problem=8,
        batch_problems=10,
    )
    assert dropped == 0 and len(mostly_right) == 24
    assert_true_labels(mostly_right)
    mostly_wrong, _ = policy_records(
        PROBLEMS[:24],
        FakeGenerator(seed=0, error_rate=0.2),
        "fake",
        correct_share=0.0,
        samples_per_problem=8,
    )
    assert_true_labels(mostly_wrong)
    right_share = sum(r["label"] == -1 for r in mostly_right) / 24
    wrong_share = sum(r["label"] == -1 for r in mostly_wrong) / 24
    assert right_share > 0.9 and wrong_share < 0.1
    assert {r["generator"] for r in mostly_right} == {"fake"}
    cut, dropped = policy_records(
        PROBLEMS[:6], FakeGenerator(seed=0, max_new_tokens=3), "fake", samples_per_problem=2
    )
    assert cut == [] and dropped == 12  # no solution reached its answer: none labelled


def test_config_checks() -> None:
    for kwargs, message in [
        ({"correct_share": 1.5}, "correct_share"),
        ({"count": 0}, "count"),
        ({"corruptions": []}, "at least one corruption"),
    ]:
        with pytest.raises(ValueError, match=message):
            ExportConfig(**kwargs)  # type: ignore[arg-type]


def test_export_writes_processbench_format(tmp_path: Path) -> None:
    output, summary = export_processbench(
        ExportConfig(count=20, correct_share=0.5, output=str(tmp_path / "a.json"))
    )
    rows = json.loads(output.read_text())
    assert len(rows) == 20 and summary["correct_share"] == 0.5
    assert set(rows[0]) == {
        "id",
        "generator",
        "problem",
        "steps",
        "label",
        "final_answer_correct",
        "error_kind",
        "corruption",
    }
    assert summary["num_samples"] == 20 and summary["source"] == "corrupt"


def test_cli_policy_source_with_the_fake_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import search.envs.arith.export as entry

    output = tmp_path / "policy.json"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "search.envs.arith.export",
            "source=policy",
            "policy=fake",
            "count=16",
            "samples_per_problem=3",
            f"output={output}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
    )
    entry.main()
    rows = json.loads(output.read_text())
    assert len(rows) == 16
    assert_true_labels(rows)
    summary = json.loads(capsys.readouterr().out.split("\nProcessBench file")[0])
    assert summary["source"] == Source.policy.value and summary["num_samples"] == 16
