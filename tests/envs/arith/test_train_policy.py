"""A few steps of the policy trainer's own code path, on a tiny model."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from search.envs.arith.tokenizer import build_tokenizer
from search.envs.arith.train_policy import (
    ModelShape,
    PolicyTrainConfig,
    encode_example,
    train_policy,
)
from search.envs.arith.world import make_split
from search.generators.hf import HFGenerator
from search.types import Prefix, Until

TINY = ModelShape(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=1,
    num_attention_heads=1,
    num_key_value_heads=1,
)


def test_loss_is_on_the_solution_only() -> None:
    tokenizer = build_tokenizer()
    problem = make_split("train", size=1)[0]
    ids, labels = encode_example(tokenizer, problem)
    prompt_len = labels.index(next(x for x in labels if x != -100))
    assert all(x == -100 for x in labels[:prompt_len])
    assert labels[prompt_len:] == ids[prompt_len:]
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[prompt_len:-1]) == "\n\n".join(problem.gold_steps)


def test_trains_saves_and_continues(tmp_path: Path) -> None:
    out = tmp_path / "policy"
    config = PolicyTrainConfig(
        output_dir=str(out),
        num_steps=4,
        stop_after=0,
        batch_size=8,
        eval_every=2,
        eval_problems=3,
        num_train_problems=64,
        warmup_steps=1,
        model=TINY,
    )
    train_policy(config)
    log = json.loads((out / "training_log.json").read_text())
    assert [row["step"] for row in log["history"]] == [2, 4]
    assert log["history"][-1]["loss"] < log["history"][0]["loss"] + 1.0
    assert 0.0 <= log["history"][-1]["val_greedy_accuracy"] <= 1.0
    generator = HFGenerator(str(out), max_tokens=8, seed=0)
    (generation,) = generator.generate([Prefix(make_split("test", size=1)[0])], 2, Until.end)
    assert len(generation.continuations) == 2
    # continuing from the saved checkpoint uses the same code path
    again = PolicyTrainConfig(
        output_dir=str(tmp_path / "more"),
        num_steps=3,
        stop_after=2,
        batch_size=8,
        eval_every=2,
        eval_problems=2,
        num_train_problems=32,
        warmup_steps=1,
        init_from=str(out),
        model=TINY,
    )
    train_policy(again)
    continued = json.loads((tmp_path / "more" / "training_log.json").read_text())
    assert [row["step"] for row in continued["history"]] == [2]  # stopped before the schedule
    assert (tmp_path / "more" / "model.safetensors").exists()


def test_cli_is_a_hydra_app_with_a_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from search.envs.arith.train_policy import main

    out = tmp_path / "policy"
    shape = [f"model.{key}={value}" for key, value in asdict(TINY).items()]
    argv = ["train_policy", f"output_dir={out}", f"hydra.run.dir={tmp_path / 'hydra'}"]
    argv += ["num_steps=2", "stop_after=0", "batch_size=4", "eval_every=2", "eval_problems=2"]
    argv += ["num_train_problems=8", "warmup_steps=1", *shape]
    monkeypatch.setattr(sys, "argv", argv)
    main()
    assert (out / "model.safetensors").exists()
    assert f"policy: {out}" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["train_policy", "num_stepz=2"])
    with pytest.raises(SystemExit):  # a typo fails at the command line, against the schema
        main()
