"""``python -m prm.label`` end to end on the fake policy (search.envs.arith.fakes.FakeGenerator)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir

from prm.label.judge import Critique, JudgeConfig
from prm.label.records import LabelRecord
from prm.sample import read_samples, run_sampling
from prm.stepwise import load_stepwise_dataset
from search.envs.arith.fakes import FakeGenerator
from search.envs.arith.world import make_split
from search.jsonl import read_jsonl
from search.resolve import CONF_DIR

LABELLERS = ["mc", "judge", "judge_local", "calculator", "consensus"]


class AllRightCritic:
    """A judge that finds every paragraph right (takes the endpoint's keyword arguments)."""

    def __init__(self, **endpoint: Any) -> None:
        self.endpoint = endpoint

    def critique(self, prompts: Sequence[str]) -> list[Critique]:
        return [Critique("Every paragraph is right. \\boxed{-1}", False, 9) for _ in prompts]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    generator = FakeGenerator(seed=3, error_rate=0.3)
    run_sampling(make_split("train", size=6), generator, out, num_samples=4, chunk_problems=4)
    return out / "samples.jsonl"


def run_cli(monkeypatch: pytest.MonkeyPatch, *overrides: str) -> None:
    import prm.label.__main__ as entry

    monkeypatch.setattr(sys, "argv", ["prm.label", "progress=false", *overrides])
    entry.main()


@pytest.mark.parametrize("labeller", [*LABELLERS, "consensus labeller.judge=llm"])
def test_every_labeller_composes(labeller: str) -> None:
    from omegaconf import OmegaConf

    import prm.label.__main__ as entry  # registers the schemas

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        name, *more = labeller.split()
        config = OmegaConf.to_object(compose("prm_label", overrides=[f"labeller={name}", *more]))
    assert isinstance(config, entry.LabelConfig)
    assert config.labeller.name in ("mc", "judge", "calculator", "consensus")
    assert config.output_dir.endswith(config.labeller.name)
    if labeller.startswith("judge"):
        assert isinstance(config.labeller, JudgeConfig)
        assert "_target_" in config.labeller.critic
    if entry.uses_critic(config):  # every key of a shipped critic is one its class takes
        from search.components import check_component

        critic = OmegaConf.to_container(OmegaConf.create(config.labeller.critic))
        assert isinstance(critic, dict)
        check_component("labeller.critic", {str(k): v for k, v in critic.items()})


def test_records_end_in_solution_order_whatever_order_they_were_labelled_in(
    samples: Path, tmp_path: Path
) -> None:
    """Solutions labelled last first (as Ray workers may finish chunks) end in the order of
    the samples: records.jsonl byte for byte that of a run in order."""
    from prm.label.__main__ import run_labelling
    from prm.label.calculator import CalculatorLabeller

    solutions = read_samples(samples)
    run_labelling(solutions, CalculatorLabeller(), tmp_path / "in_order", 5)
    late = tmp_path / "late"
    run_labelling(solutions[15:], CalculatorLabeller(), late, 5)
    records, _ = run_labelling(solutions, CalculatorLabeller(), late, 5)
    assert [r.key for r in records] == [s.key for s in solutions]
    assert (late / "records.jsonl").read_bytes() == (
        tmp_path / "in_order" / "records.jsonl"
    ).read_bytes()
    assert len(read_jsonl(late / "records.jsonl")) == 24


def test_calculator_with_report_and_resume(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    out = tmp_path / "calculator"
    run_cli(
        monkeypatch,
        "labeller=calculator",
        f"samples={samples}",
        f"output_dir={out}",
        "report=true",
        "chunk_solutions=10",
    )
    solutions = read_samples(samples)
    records = [LabelRecord.from_record(r) for r in read_jsonl(out / "records.jsonl")]
    assert len(records) == len(solutions) == 24
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_solutions"] == 24 and metrics["retention"] == 1.0
    assert metrics["usage"]["solutions"] == 24
    assert metrics["config"]["labeller"]["name"] == "calculator"  # self-describing
    dataset = load_stepwise_dataset(out / "stepwise.jsonl")
    assert len(dataset) == 24 and set(dataset["labeller"]) == {"calculator"}
    quality = json.loads((out / "quality.json").read_text())
    assert [row["labeller"] for row in quality] == ["calculator"]
    assert "| calculator | 24/24 |" in capsys.readouterr().out
    run_cli(monkeypatch, "labeller=calculator", f"samples={samples}", f"output_dir={out}")
    assert len(read_jsonl(out / "records.jsonl")) == 24  # resumed: nothing labelled twice


def test_a_finished_mc_run_loads_no_model(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    out = tmp_path / "mc"
    args = ["labeller=mc", "labeller.num_rollouts=2", "policy=fake", f"samples={samples}"]
    run_cli(monkeypatch, *args, f"output_dir={out}", "limit=8")
    first = (out / "records.jsonl").read_text()

    from search.envs.arith import fakes

    def unbuildable(*args: object, **kwargs: object) -> None:
        raise AssertionError("the MC policy was built for a finished run")

    monkeypatch.setattr(fakes.FakeGenerator, "__init__", unbuildable)
    run_cli(monkeypatch, *args, f"output_dir={out}", "limit=8")  # finished: nothing to load
    assert (out / "records.jsonl").read_text() == first
    assert json.loads((out / "metrics.json").read_text())["num_solutions"] == 8
    with pytest.raises(SystemExit):  # more to label: the model loads (hydra exits on the error)
        run_cli(monkeypatch, *args, f"output_dir={out}", "limit=12")
    assert "the MC policy was built for a finished run" in capsys.readouterr().err


def test_mc_then_consensus_reusing_it(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mc_dir, consensus_dir = tmp_path / "mc", tmp_path / "consensus"
    run_cli(
        monkeypatch,
        "labeller=mc",
        "labeller.num_rollouts=4",
        "policy=fake",
        f"samples={samples}",
        f"output_dir={mc_dir}",
        "limit=12",
    )
    metrics = json.loads((mc_dir / "metrics.json").read_text())
    assert metrics["num_solutions"] == 12 and metrics["retention"] == 1.0
    assert metrics["usage"]["rollout_tokens"] > 0 and metrics["usage"]["generate_calls"] == 1
    mc_records = [LabelRecord.from_record(r) for r in read_jsonl(mc_dir / "records.jsonl")]
    assert all(
        len(r.soft_labels) == len(s.steps)
        for r, s in zip(mc_records, read_samples(samples)[:12], strict=True)
    )

    run_cli(
        monkeypatch,
        "labeller=consensus",
        f"labeller.mc_records={mc_dir / 'records.jsonl'}",
        f"samples={samples}",
        f"output_dir={consensus_dir}",
        "limit=12",
        "report=true",
    )
    records = [LabelRecord.from_record(r) for r in read_jsonl(consensus_dir / "records.jsonl")]
    by_key = {r.key: r for r in mc_records}
    for record in records:
        mc = by_key[record.key]
        assert record.components["mc"] == mc.first_error
        if record.labelled:
            assert record.first_error == record.components["calculator"] == mc.first_error
            assert record.soft_labels == mc.soft_labels
        else:
            assert record.reason == "disagree"
    metrics = json.loads((consensus_dir / "metrics.json").read_text())
    assert metrics["num_labelled"] == sum(r.labelled for r in records)
    quality = json.loads((consensus_dir / "quality.json").read_text())
    assert [row["labeller"] for row in quality] == ["mc", "calculator", "consensus"]


def test_judge_through_a_target_critic(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "judge"
    target = f"{AllRightCritic.__module__}.{AllRightCritic.__qualname__}"
    run_cli(
        monkeypatch,
        "labeller=judge",
        f"labeller.critic._target_={target}",
        f"samples={samples}",
        f"output_dir={out}",
        "limit=5",
    )
    records = [LabelRecord.from_record(r) for r in read_jsonl(out / "records.jsonl")]
    assert [r.first_error for r in records] == [-1] * 5
    assert json.loads((out / "metrics.json").read_text())["usage"]["critique_tokens"] == 45


def test_judge_local_on_the_fake_policy(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "judge_local"
    run_cli(
        monkeypatch,
        "labeller=judge_local",
        "~labeller.critic.generator",
        "+labeller.critic.generator={_target_:search.envs.arith.fakes.FakeGenerator,seed:0}",
        f"samples={samples}",
        f"output_dir={out}",
        "limit=6",
    )
    records = [LabelRecord.from_record(r) for r in read_jsonl(out / "records.jsonl")]
    assert len(records) == 6
    # the fake policy is no judge: whatever it writes is parsed, never guessed
    parse_reasons = {None, "no_verdict", "not_an_index", "out_of_range", "truncated"}
    assert all(r.reason in parse_reasons for r in records)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["usage"]["critiques"] == 6
