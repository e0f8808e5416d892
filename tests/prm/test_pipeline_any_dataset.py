"""The PRM data pipeline on a dataset other than the arithmetic world: a MATH-style JSONL
file (``problem``, ``answer``, ``unique_id``, ``solution``, read by ``dataset=math500``),
sampled by the tiny policy, labelled by MC (the same policy) and by a judge, with label
quality wherever a checker exists."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from prm.label.judge import Critique
from prm.label.records import LabelRecord
from prm.sample import read_samples
from prm.stepwise import read_stepwise
from search.jsonl import read_jsonl

QUESTIONS = [("Compute 2 + 3.", "5"), ("Compute 7 - 4 + 2.", "5"), ("Compute 3 * 2 + 1.", "7")]


class FirstStepWrongCritic:
    """A judge that calls the first paragraph wrong (takes the endpoint's keyword arguments)."""

    def __init__(self, **endpoint: Any) -> None:
        self.endpoint = endpoint

    def critique(self, prompts: Sequence[str]) -> list[Critique]:
        return [Critique("Paragraph 0 is wrong. \\boxed{0}", False, 7) for _ in prompts]


def math_style_file(path: Path) -> Path:
    rows = [
        {"problem": question, "answer": answer, "unique_id": f"toy/{index}.json", "solution": "-"}
        for index, (question, answer) in enumerate(QUESTIONS)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run(monkeypatch: pytest.MonkeyPatch, module: str, *overrides: str) -> None:
    import importlib

    entry = importlib.import_module(module)
    monkeypatch.setattr(sys, "argv", [module, "progress=false", *overrides])
    entry.main()


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("math_style")
    data = math_style_file(root / "math_train.jsonl")
    with pytest.MonkeyPatch.context() as monkeypatch:
        run(
            monkeypatch,
            "prm.sample",
            "dataset=math500",  # the MATH-500 format: problem, answer, unique_id, solution
            f"dataset.path={data}",
            "policy=arith_tiny",
            "start=1",
            "count=2",
            "num_samples=2",
            f"output_dir={root / 'samples'}",
        )
    return root / "samples" / "samples.jsonl"


def test_sample_any_dataset_with_the_tiny_policy(sampled: Path) -> None:
    samples = read_samples(sampled)
    assert [s.problem.id for s in samples] == ["toy/1.json"] * 2 + ["toy/2.json"] * 2
    assert [s.problem.answer for s in samples[::2]] == ["5", "7"]
    assert all(s.policy == "checkpoints/arith-policy" for s in samples)
    assert all(s.steps and s.num_tokens > 0 for s in samples)
    metrics = json.loads((sampled.parent / "metrics.json").read_text())
    assert metrics["config"]["dataset"]["path"].endswith("math_train.jsonl")
    assert metrics["num_solutions"] == 4


def test_mc_and_judge_labels_and_quality(
    sampled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mc_dir, judge_dir = tmp_path / "mc", tmp_path / "judge"
    samples = read_samples(sampled)
    run(
        monkeypatch,
        "prm.label.__main__",
        "labeller=mc",
        "labeller.num_rollouts=2",
        "policy=arith_tiny",
        f"samples={sampled}",
        f"output_dir={mc_dir}",
        "report=true",  # these questions are arithmetic: the arithmetic checker is their truth
    )
    records = [LabelRecord.from_record(row) for row in read_jsonl(mc_dir / "records.jsonl")]
    assert len(records) == 4 and all(r.labelled for r in records)
    for record, solution in zip(records, samples, strict=True):
        assert len(record.soft_labels) == len(solution.steps)
        assert all(0.0 <= p <= 1.0 for p in record.soft_labels)
    assert len(read_stepwise(mc_dir / "stepwise.jsonl")) == 4
    quality = json.loads((mc_dir / "quality.json").read_text())
    assert [row["labeller"] for row in quality] == ["mc"] and quality[0]["retained"] == 4

    target = f"{FirstStepWrongCritic.__module__}.{FirstStepWrongCritic.__qualname__}"
    run(
        monkeypatch,
        "prm.label.__main__",
        "labeller=judge",
        f"labeller.critic._target_={target}",
        f"samples={sampled}",
        f"output_dir={judge_dir}",
    )
    judged = [LabelRecord.from_record(row) for row in read_jsonl(judge_dir / "records.jsonl")]
    assert [r.first_error for r in judged] == [0] * 4


def test_quality_needs_a_checker(
    sampled: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SystemExit) as refused:
        run(
            monkeypatch,
            "prm.label.__main__",
            "labeller=calculator",
            "report=true",
            "checker=null",
            f"samples={sampled}",
            f"output_dir={tmp_path / 'calc'}",
        )
    assert "error: expected a checker" in str(refused.value.code)  # one line, no traceback
    assert not (tmp_path / "calc" / "records.jsonl").exists()  # refused before labelling
