from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from prm.sample import (
    SampledSolution,
    read_samples,
    run_sampling,
    sample_solutions,
    select_problems,
)
from search.envs.arith.world import ArithDataset, Split, make_split
from search.types import (
    DEFAULT_SAMPLING,
    STEP_SEPARATOR,
    Continuation,
    FinishReason,
    Generation,
    Prefix,
    Sampling,
    Until,
    split_steps,
)

TRAIN = ArithDataset(split=Split.train, limit=100)


class GoldOrCut:
    """Scripted policy: sample i of a problem is its gold solution when i is even, the gold
    solution cut after its first step (out of tokens) when i is odd."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Prefix], int, Until]] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.calls.append((list(prefixes), n, until))
        out = []
        for prefix in prefixes:
            gold = prefix.problem.gold_steps
            continuations = []
            for index in range(n):
                steps = gold if index % 2 == 0 else gold[:1]
                text = STEP_SEPARATOR.join(steps)
                reason = FinishReason.eos if index % 2 == 0 else FinishReason.length
                continuations.append(
                    Continuation(text, split_steps(text), reason, num_tokens=len(text))
                )
            out.append(Generation(prompt_tokens=7, continuations=tuple(continuations)))
        return out


def test_select_problems_is_a_slice_of_the_train_split() -> None:
    problems = select_problems(TRAIN, start=5, count=3)
    assert [p.id for p in problems] == ["arith-train-5", "arith-train-6", "arith-train-7"]
    assert problems == make_split("train", size=8)[5:]
    with pytest.raises(ValueError, match="count >= 1"):
        select_problems(TRAIN, start=0, count=0)
    with pytest.raises(ValueError, match="got none"):
        select_problems(ArithDataset(split=Split.train, limit=3), start=5, count=3)


def test_sample_solutions_one_call_k_samples_split_into_steps() -> None:
    problems = select_problems(TRAIN, 0, 3)
    generator = GoldOrCut()
    solutions, prompt_tokens = sample_solutions(problems, generator, num_samples=4, policy="p")
    assert len(generator.calls) == 1
    prefixes, n, until = generator.calls[0]
    assert n == 4 and until is Until.end and all(p.steps == () for p in prefixes)
    assert prompt_tokens == 3 * 7
    assert len(solutions) == 12
    first = solutions[0]
    assert first.steps == problems[0].gold_steps and first.finished and first.policy == "p"
    assert solutions[1].steps == problems[0].gold_steps[:1] and not solutions[1].finished
    assert [s.sample_index for s in solutions[:4]] == [0, 1, 2, 3]
    again = SampledSolution.from_record(json.loads(json.dumps(first.to_record())))
    assert again.to_record() == first.to_record()  # gold steps are not kept: not needed
    assert again.problem.question == first.problem.question and again.key == first.key


def test_run_sampling_appends_and_resumes(tmp_path: Path) -> None:
    generator = GoldOrCut()
    problems = select_problems(TRAIN, 0, 5)
    metrics = run_sampling(problems[:3], generator, tmp_path, num_samples=2, chunk_problems=2)
    assert metrics["num_solutions"] == 6 and len(generator.calls) == 2  # chunks of 2 and 1
    metrics = run_sampling(problems, generator, tmp_path, num_samples=2, chunk_problems=2)
    assert len(generator.calls) == 3  # only the two new problems, in one chunk
    assert [p.problem.id for p in generator.calls[-1][0]] == [problems[3].id, problems[4].id]
    samples = read_samples(tmp_path / "samples.jsonl")
    assert len(samples) == 10 and len({s.key for s in samples}) == 10
    assert metrics["num_problems"] == 5
    assert metrics["answer_accuracy"] == pytest.approx(0.5)  # gold on even samples only
    assert metrics["finished_share"] == pytest.approx(0.5)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["num_solutions"] == 10


def test_cli_end_to_end_with_the_fake_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prm.sample import main

    out = tmp_path / "samples"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "prm.sample",
            f"output_dir={out}",
            "count=3",
            "num_samples=2",
            "policy=fake",
            "progress=false",
        ],
    )
    main()
    samples = read_samples(out / "samples.jsonl")
    assert len(samples) == 6
    assert {s.problem.id for s in samples} == {"arith-train-0", "arith-train-1", "arith-train-2"}
    assert all(s.steps for s in samples)
    assert json.loads((out / "metrics.json").read_text())["num_samples"] == 2
    assert list((out / "hydra").glob("*/.hydra/config.yaml"))

    # a finished run rerun: nothing left to sample, so the policy is not even built
    from search.envs.arith import fakes

    def unbuildable(*args: object, **kwargs: object) -> None:
        raise AssertionError("the policy was built for a finished run")

    monkeypatch.setattr(fakes.FakeGenerator, "__init__", unbuildable)
    main()
    assert read_samples(out / "samples.jsonl") == samples


def test_samples_do_not_depend_on_chunking_or_resume(tmp_path: Path) -> None:
    """Each problem's samples draw from the stream named by its id: chunks of 1, of 5, or
    a run resumed by a fresh generator write the same solutions."""
    from search.envs.arith.fakes import FakeGenerator

    problems = select_problems(TRAIN, 0, 5)

    def records(directory: Path, chunk: int, count: int = 5) -> list[dict[str, Any]]:
        generator = FakeGenerator(seed=2, error_rate=0.5)
        run_sampling(problems[:count], generator, directory, num_samples=3, chunk_problems=chunk)
        return [s.to_record() for s in read_samples(directory / "samples.jsonl")]

    whole = records(tmp_path / "whole", 5)
    assert records(tmp_path / "single", 1) == whole
    records(tmp_path / "resumed", 2, count=2)
    assert records(tmp_path / "resumed", 2) == whole
    # a run that sampled the last problems first (as Ray workers may finish) ends in
    # problem order: the file byte for byte the one of a run in order
    late = tmp_path / "late"
    run_sampling(problems[3:], FakeGenerator(seed=2, error_rate=0.5), late, 3, chunk_problems=2)
    assert records(late, 2) == whole
    assert (late / "samples.jsonl").read_bytes() == (tmp_path / "whole/samples.jsonl").read_bytes()
    assert len({tuple(r["steps"]) for r in whole}) > 5  # really sampled
