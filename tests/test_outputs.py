"""A run's files describe themselves: metrics.json names the models and backends, every
candidate says why it stopped and which aggregation made its score, and results.jsonl loads
with ``datasets.load_dataset("json", ...)``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FAKE = ["policy=fake", "scorer=fake", "strategy.n=4", "dataset.limit=3"]


def run(out: Path, *overrides: str) -> Path:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "search", *FAKE, *overrides, f"hydra.run.dir={out}"],
        cwd=out.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def beam_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # max_steps=2 stops some beams at a step boundary before the policy ends them
    out = tmp_path_factory.mktemp("runs") / "beam"
    return run(out, "+strategy=beam", "strategy.beam_width=2", "strategy.max_steps=2")


def test_metrics_name_the_models_and_backends(tmp_path: Path) -> None:
    out = run(tmp_path / "default")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["policy"] == "search.envs.arith.fakes.FakeGenerator"
    assert metrics["scorer"] == "search.envs.arith.fakes.FakeScorer"
    assert metrics["policy_backend"] is None and metrics["scorer_backend"] is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], ("checkpoints/arith-policy", "hf", "checkpoints/arith-prm", "hf")),
        (
            ["policy=qwen25_math_7b_instruct", "scorer=qwen25_math_prm_7b", "scorer.backend=vllm"],
            ("Qwen/Qwen2.5-Math-7B-Instruct", "vllm", "Qwen/Qwen2.5-Math-PRM-7B", "vllm"),
        ),
        (["scorer=none"], ("checkpoints/arith-policy", "hf", None, None)),
    ],
)
def test_describe_names_real_models_and_backends(overrides: list[str], expected: tuple) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from search.__main__ import describe  # registers the config schemas
    from search.resolve import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        raw = compose(config_name="config", overrides=overrides)
    described = describe(OmegaConf.to_object(raw), raw)  # type: ignore[arg-type]
    got = tuple(described[k] for k in ("policy", "policy_backend", "scorer", "scorer_backend"))
    assert got == expected


def test_candidates_record_finish_reason_and_aggregation(beam_run: Path) -> None:
    records = [json.loads(line) for line in (beam_run / "results.jsonl").read_text().splitlines()]
    reasons = set()
    for record in records:
        for candidate in record["candidates"]:
            reasons.add(candidate["finish_reason"])
            assert candidate["finished"] == (candidate["finish_reason"] == "eos")
            assert candidate["aggregation"] == "min"  # the run's aggregation
    assert "step" in reasons  # cut at max_steps, said so


def test_results_load_with_datasets(beam_run: Path) -> None:
    datasets = pytest.importorskip("datasets")
    table = datasets.load_dataset(
        "json",
        data_files=str(beam_run / "results.jsonl"),
        split="train",
        cache_dir=str(beam_run.parent / "hf-cache"),
    )
    assert table.num_rows == 3
    first = table[0]
    assert len(first["candidates"]) == 4
    assert {"finish_reason", "aggregation", "step_scores", "score"} <= set(first["candidates"][0])
    assert isinstance(first["usage"]["policy_tokens"], int)


def test_saved_trees_carry_verdicts_and_the_chosen_path(tmp_path: Path) -> None:
    out = run(
        tmp_path / "trees", "+strategy=beam", "strategy.beam_width=2", "strategy.save_trees=true"
    )
    files = sorted((out / "trees").glob("*.json"))
    assert len(files) == 3
    for path in files:
        nodes = json.loads(path.read_text())["nodes"]
        assert nodes[0]["chosen"]  # the root is on every chosen path
        assert any(n["chosen"] and n["finished"] for n in nodes)  # down to a finished leaf
        # the arithmetic world has a checker: every node below the root has its verdict
        assert all(isinstance(n["steps_correct"], bool) for n in nodes[1:])


def test_embedded_models_on_another_dataset_are_warned_about() -> None:
    from search.components import warn_if_world_mismatch

    got = warn_if_world_mismatch("math500", "/repo/checkpoints/arith-policy", None)
    assert len(got) == 1 and "policy" in got[0] and "fix" in got[0]
    both = warn_if_world_mismatch("gsm8k", "checkpoints/arith-policy", "checkpoints/arith-prm")
    assert len(both) == 2
    assert warn_if_world_mismatch("arith", "checkpoints/arith-policy", None) == []
    assert warn_if_world_mismatch("arith_longest", "checkpoints/arith-policy", None) == []
    assert warn_if_world_mismatch("math500", "Qwen/Qwen2.5-Math-7B-Instruct", None) == []
    assert got[0].endswith("or dataset=arith")
    # prm.processbench has no dataset key: it names its own way to the arithmetic world
    (subset,) = warn_if_world_mismatch("math", None, "checkpoints/arith-prm", "subsets=[X]")
    assert subset.endswith("or subsets=[X]")


def test_an_interrupted_run_counts_searched_and_set_aside_problems_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C's line: problems searched and problems set aside as too long (on_overflow=skip)
    are counted apart, and a torn last line is neither (the run redoes it)."""
    from search.__main__ import stop_interrupted
    from search.results import saved_problems

    lines = [
        {"id": "a", "question": "q", "candidates": []},
        {
            "id": "b",
            "question": "q",
            "skipped": "prompt of 300 tokens; the policy's context is 256",
        },
        {"id": "c", "question": "q", "candidates": []},
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"id": "d", "qu')
    assert saved_problems(results) == (2, 1)
    assert saved_problems(tmp_path / "none.jsonl") == (0, 0)
    with pytest.raises(SystemExit) as stopped:
        stop_interrupted(tmp_path)
    assert stopped.value.code == 130
    assert capsys.readouterr().err == (
        f"interrupted: 2 finished problems are saved in {results} (and 1 set aside as too long "
        "for the context, on_overflow=skip); re-run the same command to resume\n"
    )
