from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import prm.train as train_module
from prm.arith_model import EMBEDDED_PRM_FORMAT
from prm.scoring.encoding import PrefixEncoder
from prm.stepwise import StepwiseExample, write_stepwise
from prm.train import (
    GroupedByLength,
    LossKind,
    PRMTrainer,
    TrainConfig,
    check_packing,
    collate,
    collate_packed,
    encode_examples,
    finished_run,
    load_data,
    pack_rows,
    predicted_first_error,
    processbench_f1,
    run_settings,
    split_by_problem,
    tag_loss,
    train_prm,
    unique_solutions,
)
from search.envs.arith.tokenizer import STEP_TAG, build_tokenizer
from search.envs.arith.world import make_split
from search.inputs import InputError


def slipped(steps: tuple[str, ...]) -> tuple[str, ...]:
    """The first step with its result off by one."""
    left, result = steps[0].rsplit("= ", 1)
    return (f"{left}= {int(result) + 1}",)


def tiny_dataset(count: int) -> list[StepwiseExample]:
    """Gold solutions (all right) and their first step slipped (wrong), alternately."""
    examples = []
    for index, problem in enumerate(make_split("train", size=count)):
        wrong = index % 2 == 1
        steps = slipped(problem.gold_steps) if wrong else problem.gold_steps
        labels = (False,) if wrong else (True,) * len(steps)
        examples.append(
            StepwiseExample(
                prompt=problem.question,
                completions=steps,
                labels=labels,
                soft_labels=tuple(0.1 if not x else 0.9 for x in labels),
                labeller="test",
                problem_id=problem.id,
                answer=problem.answer,
            )
        )
    return examples


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "stepwise.jsonl"
    write_stepwise(path, tiny_dataset(24))
    return path


def config(policy: Path, data: Path, out: Path, **overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = dict(
        train_data=str(data),
        output_dir=str(out),
        policy_dir=str(policy),
        epochs=3,
        batch_size=8,
        learning_rate=3e-3,
        warmup_ratio=0.0,
        val_fraction=0.25,
        progress=False,
        num_threads=1,
        device="cpu",
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def test_encoding_is_the_scorers_and_labels_sit_on_the_tags() -> None:
    tokenizer = build_tokenizer()
    encoder = PrefixEncoder(tokenizer, EMBEDDED_PRM_FORMAT, max_length=10**9)
    examples = tiny_dataset(4)
    encoded, dropped = encode_examples(examples, encoder, max_length=512)
    assert dropped == 0
    tag = tokenizer.convert_tokens_to_ids(STEP_TAG)
    first = encoded[0]
    assert [first.token_ids[p] for p in first.tag_positions] == [tag] * len(examples[0].labels)
    text = tokenizer.decode(list(first.token_ids))
    assert text.startswith(f"Question: {examples[0].prompt}\nAnswer:\n")
    assert f"{examples[0].completions[0]}{STEP_TAG}\n\n" in text
    batch = collate(encoded[:2], tokenizer.pad_token_id, positive_label=1)
    labelled = (batch["labels"] != -100).nonzero().tolist()
    expected = [[row, p] for row, e in enumerate(encoded[:2]) for p in e.tag_positions]
    assert labelled == expected
    assert batch["labels"][1, encoded[1].tag_positions[0]] == 0  # wrong step -> class 0
    assert batch["soft_targets"][1, encoded[1].tag_positions[0]] == pytest.approx(0.1)
    short, dropped = encode_examples(examples, encoder, max_length=20)
    assert short == [] and dropped == 4


def test_soft_loss_is_the_hard_loss_on_0_1_targets_and_bce_otherwise() -> None:
    import torch

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 2)
    labels = torch.full((2, 5), -100)
    soft = torch.full((2, 5), -1.0)
    labels[0, 1], labels[1, 3] = 1, 0
    soft[0, 1], soft[1, 3] = 1.0, 0.0
    batch = {"labels": labels, "soft_targets": soft}
    hard = tag_loss(logits, batch, LossKind.hard, positive_label=1)
    assert float(tag_loss(logits, batch, LossKind.soft, 1)) == pytest.approx(float(hard))
    soft[0, 1], soft[1, 3] = 0.7, 0.2
    p_pos = torch.softmax(logits, -1)[..., 1]
    bce = torch.nn.functional.binary_cross_entropy(
        torch.stack([p_pos[0, 1], p_pos[1, 3]]), torch.tensor([0.7, 0.2])
    )
    assert float(tag_loss(logits, batch, LossKind.soft, 1)) == pytest.approx(float(bce), 1e-5)


def test_processbench_f1_and_prediction() -> None:
    assert predicted_first_error([0.9, 0.4, 0.2]) == 1
    assert predicted_first_error([0.9, 0.6]) == -1
    scores = processbench_f1(predicted=[1, -1, 2, -1, -1], gold=[1, 0, 2, -1, -1])
    assert scores["error_accuracy"] == pytest.approx(2 / 3)
    assert scores["correct_accuracy"] == 1.0
    assert scores["f1"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    assert processbench_f1([0], [0])["f1"] is None


def test_split_keeps_problems_whole_and_is_seeded() -> None:
    examples = tiny_dataset(40) + tiny_dataset(40)  # two samples of every problem
    train, val = split_by_problem(examples, 0.25, seed=0)
    assert {e.problem_id for e in train}.isdisjoint({e.problem_id for e in val})
    assert len(train) + len(val) == 80 and 0 < len(val) < 40
    assert split_by_problem(examples, 0.25, seed=0) == (train, val)
    assert split_by_problem(examples, 0.25, seed=1) != (train, val)


def test_dedupe_keeps_one_copy_of_each_training_solution_and_every_validation_one(
    tmp_path: Path,
) -> None:
    examples = tiny_dataset(16)
    relabelled = replace(examples[0], soft_labels=(0.5,) * len(examples[0].labels))
    doubled = [*examples, *examples, relabelled]
    assert unique_solutions(doubled) == [*examples, relabelled]  # other labels: kept
    path = tmp_path / "doubled.jsonl"
    write_stepwise(path, doubled)
    tokenizer = build_tokenizer()
    base = TrainConfig(train_data=str(path), val_fraction=0.25, policy_dir=None,
                       init_checkpoint="unused")  # fmt: skip
    full_train, full_val, _ = load_data(base, tokenizer)
    train, val, _ = load_data(replace(base, dedupe=True), tokenizer)
    assert len(val) == len(full_val) and len(val) % 2 == 0  # validation: every copy
    unique_train = {(e.token_ids, e.labels, e.soft_labels) for e in full_train}
    assert len(train) == len(unique_train) < len(full_train)


def test_config_needs_exactly_one_starting_point() -> None:
    with pytest.raises(ValueError, match="exactly one of policy_dir and init_checkpoint"):
        TrainConfig(policy_dir="a", init_checkpoint="b")
    with pytest.raises(ValueError, match="exactly one"):
        TrainConfig(policy_dir=None)
    with pytest.raises(ValueError, match="only with policy_dir"):
        TrainConfig(policy_dir=None, init_checkpoint="prm", extra_layers=1)
    with pytest.raises(ValueError, match="only with policy_dir"):
        TrainConfig(policy_dir=None, init_checkpoint="prm", tag_from_separator=True)


def test_a_deeper_prm_than_its_policy_trains_and_scores(
    tiny_policy_dir: Path, data: Path, tmp_path: Path
) -> None:
    from prm.scoring.factory import build_scorer

    out = tmp_path / "deeper"
    log = train_prm(config(tiny_policy_dir, data, out, epochs=1, extra_layers=1))
    policy_depth = json.loads((tiny_policy_dir / "config.json").read_text())["num_hidden_layers"]
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == policy_depth + 1
    assert log["config"]["extra_layers"] == 1
    problem = make_split("train", size=1)[0]
    from search.types import Prefix, Problem

    scorer = build_scorer(str(out), "hf", hf={"device": "cpu"})
    (scores,) = scorer.score([Prefix(Problem("x", problem.question, ""), problem.gold_steps)])
    assert len(scores) == len(problem.gold_steps)


def test_training_learns_and_the_checkpoint_loads_in_the_scorer(
    tiny_policy_dir: Path, data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "prm"
    log = train_prm(config(tiny_policy_dir, data, out, epochs=4))
    history = log["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert log["num_val"] > 0 and "val_f1" in history[-1] and "val_step_accuracy" in history[0]
    assert json.loads((out / "training_log.json").read_text())["total_steps"] == log["total_steps"]
    from prm.scoring.factory import build_scorer
    from search.types import Prefix, Problem

    scorer = build_scorer(str(out), "hf", hf={"device": "cpu"})
    problem = make_split("train", size=1)[0]
    scores = scorer.score(
        [Prefix(Problem("x", problem.question, problem.answer), problem.gold_steps)]
    )
    assert len(scores[0]) == len(problem.gold_steps)
    assert all(0.0 <= s <= 1.0 for s in scores[0])
    # read at another step tag than it learned, the PRM would score noise: refused
    with pytest.raises(InputError, match=r"trained with .*fix: \"scorer\.step_tag='<step>'\"$"):
        build_scorer(str(out), "hf", step_tag="|", hf={"device": "cpu"})
    # a template with line breaks cannot be typed as an override: the fix says where it goes
    with pytest.raises(InputError, match=r"in a scorer YAML .*step_template: \"\{step\}"):
        build_scorer(str(out), "hf", step_template="{step} {tag}", hf={"device": "cpu"})


def test_a_max_length_beyond_the_models_context_is_refused(
    tiny_policy_dir: Path, data: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=r"expected max_length <= the model's context"):
        train_prm(config(tiny_policy_dir, data, tmp_path / "prm", max_length=10**6))
    assert not (tmp_path / "prm" / "training_log.json").exists()
    assert not (tmp_path / "prm" / "init").exists()  # refused before the PRM was initialised


def test_export_dir_apart_from_what_the_run_reads_and_writes(tmp_path: Path) -> None:
    """export_dir is deleted and replaced by the trained model: never the checkpoint the run
    starts from (the shipped PRM, continued in place), nor its output_dir, nor one inside
    the other."""
    start = tmp_path / "arith-prm"
    out = tmp_path / "runs" / "run"
    base = dict(train_data="d.jsonl", output_dir=str(out), policy_dir=None)
    cases = {
        "init_checkpoint": dict(init_checkpoint=str(start), export_dir=str(start)),
        "output_dir": dict(init_checkpoint=str(start), export_dir=str(out.parent)),
    }
    for key, settings in cases.items():
        with pytest.raises(ValueError, match=rf"expected export_dir apart from {key}.*fix: "):
            TrainConfig(**(base | settings))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"apart from policy_dir"):
        TrainConfig(train_data="d.jsonl", output_dir=str(out), policy_dir=str(start),
                    export_dir=str(tmp_path))  # fmt: skip
    # the shipped PRM named as the run reads it (from here, else from the repository root)
    # and written back by its absolute path: refused from any directory
    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "arith-prm"
    with pytest.raises(ValueError, match=r"apart from init_checkpoint"):
        TrainConfig(**(base | dict(init_checkpoint="checkpoints/arith-prm",
                                   export_dir=str(shipped))))  # type: ignore[arg-type]  # fmt: skip
    for fine in (tmp_path / "new", out / "final"):  # inside output_dir: benchmarks/lessons.py
        TrainConfig(**(base | dict(init_checkpoint=str(start), export_dir=str(fine))))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"apart from init_checkpoint"):
        TrainConfig(**(base | dict(init_checkpoint=str(start), export_dir=str(start / "x"))))  # type: ignore[arg-type]


def test_replacing_a_model_in_export_dir_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run, export = tmp_path / "run", tmp_path / "export"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with caplog.at_level("WARNING"):
        train_module.export_model(run, export)
    assert "held a model" not in caplog.text  # a new export_dir: nothing replaced
    with caplog.at_level("WARNING"):
        train_module.export_model(run, export)
    assert f"export_dir {export} held a model: replaced" in caplog.text


def test_more_dropped_examples_than_max_dropped_share_is_an_error(tmp_path: Path) -> None:
    """Examples longer than max_length are dropped; more than max_dropped_share of the
    training set dropped is refused with the fix, unless the share allows it."""
    tokenizer = build_tokenizer()
    path = tmp_path / "s.jsonl"
    write_stepwise(path, tiny_dataset(24))
    base = TrainConfig(train_data=str(path), val_fraction=0.0, policy_dir=None,
                       init_checkpoint="unused")  # fmt: skip
    full, _, dropped = load_data(base, tokenizer)
    assert dropped == 0
    lengths = sorted(len(example.token_ids) for example in full)
    half = replace(base, max_length=lengths[len(lengths) // 2 - 1])  # about half are longer
    with pytest.raises(ValueError, match=r"max_dropped_share=0\.1 .*got \d+ of 24; fix: raise"):
        load_data(half, tokenizer)
    kept, _, dropped = load_data(replace(half, max_dropped_share=1.0), tokenizer)
    assert dropped > 0.1 * 24 and len(kept) == 24 - dropped
    with pytest.raises(ValueError, match=r"0 <= max_dropped_share <= 1"):
        replace(base, max_dropped_share=1.5)


def test_pack_rows_fits_every_example_once_within_the_capacity() -> None:
    lengths = [9, 3, 7, 2, 5, 5, 1, 9]
    rows = pack_rows(lengths, capacity=10)
    assert sorted(i for row in rows for i in row) == list(range(8))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
    assert len(rows) == 5  # 41 tokens in rows of 10: first fit decreasing needs 5
    assert pack_rows(lengths, capacity=10) == rows  # deterministic
    with pytest.raises(ValueError, match="at most 8 tokens, got 9"):
        pack_rows(lengths, capacity=8)


def test_a_packed_batch_gives_the_loss_and_gradients_of_the_padded_one(
    tiny_policy_dir: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForTokenClassification

    from prm.arith_model import init_prm_from_policy

    tokenizer = build_tokenizer()
    encoder = PrefixEncoder(tokenizer, EMBEDDED_PRM_FORMAT, max_length=10**9)
    examples = tiny_dataset(12)
    for index in range(0, 12, 4):  # solutions of other lengths: a right one, a step shorter
        examples[index] = replace(
            examples[index],
            completions=examples[index].completions[:-1],
            labels=examples[index].labels[:-1],
            soft_labels=examples[index].soft_labels[:-1],
        )
    encoded, _ = encode_examples(examples, encoder, max_length=512)
    assert len({len(e.token_ids) for e in encoded}) > 2
    source = init_prm_from_policy(tiny_policy_dir, tmp_path / "init", seed=0)
    model = AutoModelForTokenClassification.from_pretrained(str(source), dtype=torch.float32)
    pad = tokenizer.pad_token_id
    padded, packed = collate(encoded, pad, 1), collate_packed(encoded, pad, 1)
    assert packed["input_ids"].numel() < padded["input_ids"].numel()  # fewer rows, same width
    assert packed["input_ids"].shape[1] == padded["input_ids"].shape[1]
    assert (packed["labels"] != -100).sum() == (padded["labels"] != -100).sum()

    def loss_and_grads(batch: dict[str, Any], how: LossKind) -> tuple[Any, list[Any]]:
        model.zero_grad()
        logits = model(
            input_ids=batch["input_ids"],
            attention_mask=batch.get("attention_mask"),
            position_ids=batch.get("position_ids"),
            use_cache=False,  # as PRMTrainer.compute_loss
        ).logits
        value = tag_loss(logits, batch, how, positive_label=1)
        value.backward()
        return value.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    for how in (LossKind.hard, LossKind.soft):
        loss, grads = loss_and_grads(padded, how)
        packed_loss, packed_grads = loss_and_grads(packed, how)
        assert packed_loss == pytest.approx(loss.item(), rel=1e-5)
        assert len(grads) == len(packed_grads)
        for grad, packed_grad in zip(grads, packed_grads, strict=True):
            assert torch.allclose(grad, packed_grad, rtol=1e-4, atol=1e-6)
    # PRMTrainer's own loss on a model whose config keeps a cache (this one's does), where
    # transformers would skip the per-example mask unless the cache is turned off
    assert model.config.use_cache
    stub = SimpleNamespace(loss_kind=LossKind.hard, positive_label=1)
    trainer_loss = PRMTrainer.compute_loss(stub, model, packed)
    assert trainer_loss.item() == pytest.approx(loss_and_grads(padded, LossKind.hard)[0].item())
    # the mask is what makes them equal: packed rows that attend across examples differ
    crossed = dict(
        packed,
        position_ids=torch.arange(packed["input_ids"].shape[1]).expand_as(packed["input_ids"]),
    )
    crossed_loss, _ = loss_and_grads(crossed, LossKind.hard)
    assert crossed_loss != pytest.approx(loss_and_grads(padded, LossKind.hard)[0].item(), rel=1e-3)


def test_packing_is_refused_where_transformers_would_not_mask_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    check_packing("sdpa")  # this install masks packed rows per example
    with pytest.raises(ValueError, match="flash_attention_2.*fix: pack=false"):
        check_packing("flash_attention_2")
    import transformers.masking_utils as masking_utils

    monkeypatch.delattr(masking_utils, "find_packed_sequence_indices")  # as before 4.54
    with pytest.raises(ValueError, match="transformers >= 4.54.*fix: upgrade"):
        check_packing()


def test_packed_training_takes_the_padded_runs_first_step_and_validates_unpacked(
    tiny_policy_dir: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed_batches: list[int] = []

    def spy(batch: Any, pad_id: int, positive_label: int) -> dict[str, Any]:
        packed_batches.append(len(batch))
        return collate_packed(batch, pad_id, positive_label)

    from prm.arith_model import init_prm_from_policy

    monkeypatch.setattr(train_module, "collate_packed", spy)
    # without the head's dropout (0.1 by default), whose random mask depends on the layout
    source = init_prm_from_policy(tiny_policy_dir, tmp_path / "init", seed=0)
    settings = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps(settings | {"classifier_dropout": 0.0}))
    start = {"policy_dir": None, "init_checkpoint": str(source), "max_steps": 1}
    plain = train_prm(config(tiny_policy_dir, data, tmp_path / "plain", **start))
    assert packed_batches == []
    packed = train_prm(config(tiny_policy_dir, data, tmp_path / "packed", **start, pack=True))
    # training batches of 8 were packed (the loader may draw one ahead); the validation
    # batch, of another size, was not
    assert packed_batches and set(packed_batches) == {8} and packed["num_val"] not in (0, 8)
    # the same first batch, the same loss (AdamW's first update, about lr x the sign of each
    # gradient, turns float noise in near-zero gradients into different weights after it)
    first = plain["history"][-1]["train_loss"]
    assert packed["history"][-1]["train_loss"] == pytest.approx(first, rel=1e-5)
    assert "val_f1" in packed["history"][-1]


def test_bf16_trains_in_bfloat16_and_keeps_float32_weights(
    tiny_policy_dir: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from prm.arith_model import init_prm_from_policy
    from search.rundir import RunDirError

    seen: list[torch.dtype] = []
    real = train_module.PRMTrainer.compute_loss

    def spy(self: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        # the classifier's own output: the Trainer hands the loss float32 logits either way
        hook = model.score.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
        try:
            return real(self, model, *args, **kwargs)
        finally:
            hook.remove()

    monkeypatch.setattr(train_module.PRMTrainer, "compute_loss", spy)
    source = init_prm_from_policy(tiny_policy_dir, tmp_path / "init", seed=0)
    settings = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps(settings | {"classifier_dropout": 0.0}))
    start = {"policy_dir": None, "init_checkpoint": str(source), "max_steps": 1}
    plain = train_prm(config(tiny_policy_dir, data, tmp_path / "fp32", **start))
    assert seen and set(seen) == {torch.float32}
    seen.clear()
    out = tmp_path / "bf16"
    mixed = train_prm(config(tiny_policy_dir, data, out, **start, bf16=True))
    # the forward ran in bfloat16, and the loss is the float32 one's within bfloat16's
    # precision, not bit for bit the same
    assert seen and set(seen) == {torch.bfloat16}
    first, loss = plain["history"][-1]["train_loss"], mixed["history"][-1]["train_loss"]
    assert loss == pytest.approx(first, rel=0.05) and loss != first
    from safetensors.torch import load_file

    weights = load_file(str(out / "model.safetensors"))
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}
    # device=auto on a machine without a GPU: the Trainer is told it trains on the CPU, where
    # it takes bf16 (it refuses bf16 for a GPU it cannot find)
    if not torch.cuda.is_available():
        auto = config(tiny_policy_dir, data, out, **start, bf16=True, device="auto")
        assert train_module.training_arguments(auto, 1, has_val=False).use_cpu
    # precision decides the weights: a bf16 run does not resume as a float32 one
    (out / "checkpoint-1").mkdir(exist_ok=True)
    with pytest.raises(RunDirError, match="bf16: True -> False"):
        train_prm(config(tiny_policy_dir, data, out, **start))


def test_bf16_without_bfloat16_on_the_device_is_refused_or_warned_before_loading(
    tiny_policy_dir: Path,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import torch

    run = config(tiny_policy_dir, data, tmp_path / "run", bf16=True, device="auto")
    # a GPU asked for that has no bfloat16, or none at all: refused, naming the fix
    monkeypatch.setattr(train_module, "resolve_device", lambda device: "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"with no GPU; fix: bf16=false, or device=cpu"):
        train_module.check_bf16(run)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    with pytest.raises(ValueError, match=r"with a GPU without bfloat16; fix: bf16=false"):
        train_module.check_bf16(run)
    # ... and refused before any model loads
    loads: list[str] = []
    monkeypatch.setattr(train_module, "initial_checkpoint", lambda *a: loads.append("x"))
    with pytest.raises(ValueError, match="bf16=false"):
        train_prm(run)
    assert loads == []
    # a CPU without bfloat16 instructions: it runs, with a warning
    monkeypatch.setattr(train_module, "resolve_device", lambda device: "cpu")
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    with caplog.at_level("WARNING", logger="prm.train"):
        train_module.check_bf16(run)
    assert "may be emulated" in caplog.text and "fix: bf16=false" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="prm.train"):
        train_module.check_bf16(replace(run, bf16=False))  # float32: nothing to say
    assert caplog.text == ""


def test_grouped_batches_are_a_seeded_permutation_of_similar_lengths() -> None:
    lengths = [(i * 37) % 101 for i in range(230)]  # 230 examples: batches of 8, 6 left over
    sampler = GroupedByLength(lengths, batch_size=8, seed=3, group_batches=4)
    order = list(sampler)
    assert sorted(order) == list(range(230)) and len(sampler) == 230
    batches = sampler.batches()
    assert [len(b) for b in batches] == [8] * 28 + [6]  # the short batch last
    assert order == [i for batch in batches for i in batch]
    # a group of 4 batches is cut from one sorted run: a batch spans far fewer lengths than
    # a batch of a plain shuffle does

    def mean_spread(cut: list[list[int]]) -> float:
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in cut) / len(cut)

    shuffled = list(range(230))
    random.Random(0).shuffle(shuffled)
    plain = [shuffled[i : i + 8] for i in range(0, 224, 8)]
    assert mean_spread(batches[:-1]) < 0.4 * mean_spread(plain)
    assert list(GroupedByLength(lengths, 8, seed=3, group_batches=4)) == order  # seeded
    sampler.set_epoch(1)
    assert list(sampler) != order  # another epoch, another order
    assert list(GroupedByLength(lengths, 8, seed=4, group_batches=4)) != order
    with pytest.raises(ValueError, match="batch_size and group_batches"):
        GroupedByLength(lengths, 0, seed=0)


def test_a_log_older_than_a_config_field_still_reads_as_finished(
    tiny_policy_dir: Path, data: Path, tmp_path: Path
) -> None:
    run = config(tiny_policy_dir, data, tmp_path)
    logged = {k: v for k, v in asdict(run).items() if k != "group_by_length"}
    (tmp_path / "training_log.json").write_text(
        json.dumps({"config": logged, "total_steps": 9}, default=str)
    )
    assert finished_run(tmp_path, run, 9) is not None  # ran before the field: its default
    assert finished_run(tmp_path, replace(run, group_by_length=True), 9) is None
    assert finished_run(tmp_path, run, 10) is None


def test_a_killed_run_resumes_only_with_its_own_settings(
    tiny_policy_dir: Path, data: Path, tmp_path: Path
) -> None:
    from search.rundir import RunDirError, check_fingerprint

    started = config(tiny_policy_dir, data, tmp_path)
    check_fingerprint(tmp_path, run_settings(asdict(started)), has_records=False)
    (tmp_path / "checkpoint-2").mkdir()  # what a killed run leaves to resume from
    stored = json.loads((tmp_path / "fingerprint.json").read_text())
    # a fingerprint holding a field since counted as run-only (it changes no weight)
    (tmp_path / "fingerprint.json").write_text(json.dumps(stored | {"save_every": 7}))
    with pytest.raises(RunDirError, match="got 1 different: learning_rate: 0.003 -> 0.001"):
        train_prm(replace(started, learning_rate=1e-3))
    # a finished run from before fingerprint.json: judged by the settings its log records
    legacy = tmp_path / "legacy"
    (legacy / "checkpoint-9").mkdir(parents=True)
    logged = replace(started, output_dir=str(legacy))
    (legacy / "training_log.json").write_text(
        json.dumps({"config": asdict(logged), "total_steps": 9}, default=str)
    )
    with pytest.raises(RunDirError, match="learning_rate: 0.003 -> 0.001"):
        train_prm(replace(logged, learning_rate=1e-3))
    linked = tmp_path.parent / f"{tmp_path.name}-data-link"
    linked.symlink_to(data.parent)
    # the same data file spelled through a link, and settings that change no weight: the same run
    same = replace(started, train_data=str(linked / data.name), num_threads=2, progress=True)
    assert run_settings(asdict(same)) == run_settings(asdict(started))


@pytest.mark.parametrize("group_by_length", [False, True])
def test_resume_continues_from_the_saved_step(
    tiny_policy_dir: Path,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    group_by_length: bool,
) -> None:
    import torch
    from transformers import AutoModelForTokenClassification

    whole = tmp_path / "whole"
    train_prm(config(tiny_policy_dir, data, whole, save_every=2, group_by_length=group_by_length))

    killed = tmp_path / "killed"
    steps_taken: list[int] = []

    class DiesAfterStep6(train_module.StopOnDivergence):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            steps_taken.append(state.global_step)
            if state.global_step == 6:
                raise KeyboardInterrupt  # a kill before the step-6 checkpoint is written

    monkeypatch.setattr(train_module, "StopOnDivergence", DiesAfterStep6)
    with pytest.raises(KeyboardInterrupt):
        train_prm(
            config(tiny_policy_dir, data, killed, save_every=2, group_by_length=group_by_length)
        )
    assert [p.name for p in killed.glob("checkpoint-*")] == ["checkpoint-4"]
    state = json.loads((killed / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["max_steps"] == 9  # 18 examples, batch 8, 3 epochs

    class Counts(train_module.StopOnDivergence):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            resumed_steps.append(state.global_step)

    resumed_steps: list[int] = []
    monkeypatch.setattr(train_module, "StopOnDivergence", Counts)
    log = train_prm(
        config(tiny_policy_dir, data, killed, save_every=2, group_by_length=group_by_length)
    )
    assert resumed_steps == [5, 6, 7, 8, 9]  # continued from step 4, did not start over
    assert [row["epoch"] for row in log["history"]] == [1, 2, 3]

    a = AutoModelForTokenClassification.from_pretrained(str(whole))
    b = AutoModelForTokenClassification.from_pretrained(str(killed))
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(x, y, atol=1e-5), name

    # a rerun of the finished run trains nothing and keeps its log, last validation included
    # (resuming from the last checkpoint, saved before that validation, used to drop it)
    resumed_steps.clear()
    written = (killed / "training_log.json").read_text()
    again = train_prm(
        config(
            tiny_policy_dir,
            data,
            killed,
            save_every=2,
            progress=True,
            group_by_length=group_by_length,
        )
    )
    assert resumed_steps == [] and again == log
    assert (killed / "training_log.json").read_text() == written
    assert "val_f1" in again["history"][-1]


def test_cli_end_to_end(
    tiny_policy_dir: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cli"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "prm.train",
            f"train_data={data}",
            f"output_dir={out}",
            f"policy_dir={tiny_policy_dir}",
            "epochs=1",
            "batch_size=8",
            "loss=soft",
            "progress=false",
            "num_threads=1",
            "device=cpu",
            f"export_dir={tmp_path / 'export'}",
        ],
    )
    train_module.main()
    assert (out / "config.json").exists() and (out / "training_log.json").exists()
    assert list(out.glob("checkpoint-*/trainer_state.json"))  # a Trainer checkpoint to resume
    logged = json.loads((out / "training_log.json").read_text())
    assert logged["config"]["loss"] == "soft"
    exported = sorted(path.name for path in (tmp_path / "export").iterdir())
    assert "config.json" in exported and "training_log.json" in exported
    assert not [name for name in exported if name.startswith("checkpoint")]
    assert "init" not in exported


def test_continue_from_a_prm_checkpoint(data: Path, tmp_path: Path) -> None:
    from prm.arith_model import build_random_prm, save_prm

    tokenizer = build_tokenizer()
    start = save_prm(build_random_prm(tokenizer, seed=1), tokenizer, tmp_path / "start")
    out = tmp_path / "continued"
    log = train_prm(
        TrainConfig(
            train_data=str(data),
            output_dir=str(out),
            policy_dir=None,
            init_checkpoint=str(start),
            epochs=1,
            batch_size=8,
            progress=False,
            device="cpu",
        )
    )
    assert log["history"][0]["epoch"] == 1 and not (out / "init").exists()
    assert (out / "model.safetensors").exists()


@pytest.mark.slow
def test_two_processes_under_accelerate_launch(
    tiny_policy_dir: Path, data: Path, tmp_path: Path
) -> None:
    """The same entry point, unchanged, as 2 CPU processes under accelerate's multi-process
    launcher (torch.distributed over gloo; accelerate's `--cpu` path would need MPI): each
    process takes its own batch, so an epoch has half the steps of one process."""
    import os
    import subprocess

    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "prm.train", f"train_data={data}", f"output_dir={out}",
        f"policy_dir={tiny_policy_dir}", "epochs=2", "batch_size=4", "val_fraction=0.25",
        "progress=false", "device=cpu", f"hydra.run.dir={tmp_path / 'hydra'}",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    logged = json.loads((out / "training_log.json").read_text())
    per_epoch = -(-logged["num_train"] // (4 * 2))  # ceil(examples / (batch x processes))
    assert logged["total_steps"] == 2 * per_epoch
    assert [row["epoch"] for row in logged["history"]] == [1, 2]
    assert "val_f1" in logged["history"][-1] or "val_step_accuracy" in logged["history"][-1]
    assert (out / "model.safetensors").exists()


def test_max_steps_ends_the_schedule_and_validates_once(
    tiny_policy_dir: Path, data: Path, tmp_path: Path
) -> None:
    log = train_prm(config(tiny_policy_dir, data, tmp_path / "short", epochs=5, max_steps=2))
    assert log["total_steps"] == 2  # max_steps wins over epochs
    (row,) = log["history"]  # one row: the end of the run, with its validation
    assert row["step"] == 2 and "train_loss" in row and "val_loss" in row
    assert (tmp_path / "short" / "training_curve.png").exists()
