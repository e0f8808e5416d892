"""Stage 3 of the PRM pipeline: train a token-classification PRM on a stepwise dataset.

The input of a solution is exactly what the embedded scorer reads
(``prm.scoring.encoding.PrefixEncoder`` with the format below: ``PLAIN_TEMPLATE`` then every
step followed by the step tag and a blank line); the loss is taken at the step-tag tokens
only (every other position is ignored):

- ``loss=hard``: cross-entropy on the hard labels (the paper's choice, arXiv 2501.07301 §3);
- ``loss=soft``: cross-entropy against the soft target ``[1 - p, p]`` (``p`` = the MC
  estimate). With a 2-label softmax this is also the BCE of the positive-class probability
  against ``p``, and differs from KL(target || model) by a constant.

The model starts from the policy (``prm.arith_model.init_prm_from_policy``: the policy's weights
with a fresh 2-label head, positive label 1) or from a PRM checkpoint (``init_checkpoint``).
Each epoch ends with a validation pass reporting the ProcessBench F1 of the first-error
prediction (first step with p(right) < 0.5, or none): the harmonic mean of the accuracy on
solutions with an error and on error-free ones.

    python -m prm.train                                   # conf/prm_train.yaml
    python -m prm.train train_data=runs/prm/labels/mc/stepwise.jsonl loss=soft epochs=3

Training runs on ``transformers.Trainer`` (checkpoints, schedule, clipping, logging, and
several processes or GPUs through accelerate, unchanged)::

    accelerate launch --multi_gpu --num_processes 2 -m prm.train batch_size=16  # 2 x 16 a step

This module adds only what the Trainer lacks: the step-tag encoding and collation, the soft
label loss (``PRMTrainer.compute_loss``) and the ProcessBench F1 as the validation metric.
``output_dir`` receives the final model and tokenizer (Hugging Face format, what both scorer
backends load) with ``training_log.json``; ``output_dir/checkpoint-<step>`` holds the latest
Trainer checkpoint (weights as safetensors, optimizer, scheduler and RNG states), and a
rerun resumes from it. ``export_dir`` (optional) receives a clean copy of the final model and
its log only, e.g. ``checkpoints/arith-prm`` for the shipped PRM.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Any, cast

from transformers import Trainer, TrainerCallback

from prm.arith_model import EMBEDDED_PRM_FORMAT
from prm.first_error import first_error_of, predicted_first_error, processbench_f1
from prm.scoring.encoding import PrefixEncoder, check_max_length
from prm.scoring.format import PRMFamily, PRMFormat
from prm.stepwise import StepwiseExample, read_stepwise
from search.inputs import exit_on_input_error
from search.progress import quiet_library_bars
from search.resolve import CONF_DIR, resolve_device, resolve_model_path
from search.rundir import FINGERPRINT_FILE, check_fingerprint
from search.types import Prefix, Problem

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


class LossKind(str, Enum):
    hard = "hard"
    soft = "soft"


@dataclass
class TrainConfig:
    """``conf/prm_train.yaml``.

    Exactly one of ``policy_dir`` (initialise from the policy checkpoint) and ``init_checkpoint``
    (continue from a token-classification PRM) is set. Without ``val_data``, ``val_fraction``
    of the *problems* (all their samples together) is held out for validation.
    Examples longer than ``max_length`` tokens are dropped and counted; more than
    ``max_dropped_share`` of the training examples dropped is an error. ``export_dir`` may not
    be, hold or sit inside the checkpoint training starts from, nor be or hold ``output_dir``.
    """

    train_data: str = "runs/prm/labels/consensus/stepwise.jsonl"
    val_data: str | None = None
    val_fraction: float = 0.1
    output_dir: str = "runs/prm/model"
    export_dir: str | None = None
    policy_dir: str | None = "checkpoints/arith-policy"
    init_checkpoint: str | None = None
    extra_layers: int = 0  # with policy_dir: decoder layers stacked on the policy's (identity init)
    tag_from_separator: bool = False  # with policy_dir: the step tag's embedding starts as "\n"'s
    loss: LossKind = LossKind.hard
    epochs: int = 3
    max_steps: int = 0  # > 0: stop after this many optimizer steps (the schedule ends there)
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 256
    # the most of the training examples that may be dropped for being longer than max_length
    max_dropped_share: float = 0.1
    dedupe: bool = False  # train on one copy of each identical solution (validation keeps all)
    group_by_length: bool = False  # batches of similar lengths: less padding (GroupedByLength)
    pack: bool = False  # a batch's examples packed into fewer rows: the same loss, less padding
    # mixed precision: forward and backward autocast to bfloat16; weights, gradients and the
    # optimizer's state stay float32 (check_bf16: a GPU without bfloat16 is refused)
    bf16: bool = False
    save_every: int = 200  # steps between Trainer checkpoints (the last one is kept)
    resume: bool = True
    seed: int = 0
    num_threads: int = 0  # 0: torch's default
    device: str = "auto"
    progress: bool = True
    # the input layout: fields of prm.scoring.format.PRMFormat (token_classification);
    # defaults are the embedded PRM's (prm.arith_model.EMBEDDED_PRM_FORMAT)
    step_tag: str = EMBEDDED_PRM_FORMAT.step_tag
    step_template: str = EMBEDDED_PRM_FORMAT.step_template
    prompt_template: str = EMBEDDED_PRM_FORMAT.prompt_template
    use_chat_template: bool = EMBEDDED_PRM_FORMAT.use_chat_template
    system_prompt: str | None = EMBEDDED_PRM_FORMAT.system_prompt
    positive_label: int = EMBEDDED_PRM_FORMAT.positive_label

    def __post_init__(self) -> None:
        if (self.policy_dir is None) == (self.init_checkpoint is None):
            raise ValueError(
                f"expected exactly one of policy_dir and init_checkpoint, got "
                f"policy_dir={self.policy_dir!r} "
                f"init_checkpoint={self.init_checkpoint!r}; fix: set the other to null"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.save_every < 1:
            raise ValueError(
                "expected epochs, batch_size and save_every >= 1, got "
                f"{self.epochs}, {self.batch_size}, {self.save_every}; fix: 1 or more each"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(
                f"expected 0 <= val_fraction < 1, got {self.val_fraction}; fix: e.g. "
                "val_fraction=0.1 (0: no validation)"
            )
        if not 0.0 <= self.max_dropped_share <= 1.0:
            raise ValueError(
                f"expected 0 <= max_dropped_share <= 1, got {self.max_dropped_share}; fix: "
                "e.g. max_dropped_share=0.1 (1: train on whatever fits)"
            )
        self.check_export_dir()
        if self.extra_layers < 0 or (
            (self.extra_layers or self.tag_from_separator) and self.policy_dir is None
        ):
            raise ValueError(
                f"expected extra_layers >= 0, and extra_layers or tag_from_separator only with "
                f"policy_dir, got extra_layers={self.extra_layers}, tag_from_separator="
                f"{self.tag_from_separator} with policy_dir={self.policy_dir!r}; fix: "
                "extra_layers=0 tag_from_separator=false to continue a PRM"
            )

    def check_export_dir(self) -> None:
        """``export_dir`` is deleted, then written with the trained model: refuse one that is,
        holds or sits inside the checkpoint the run starts from, or that is or holds
        ``output_dir`` (a folder inside ``output_dir`` is fine: the run's files are listed
        before it is written)."""
        if self.export_dir is None:
            return
        from search.resolve import local_model_dir

        export = Path(os.path.realpath(self.export_dir))  # written where the run stands
        others = {
            "init_checkpoint": self.init_checkpoint,
            "policy_dir": self.policy_dir,
            "output_dir": self.output_dir,
        }
        for key, value in others.items():
            if value is None:
                continue
            # a starting checkpoint is read as resolve_model_path finds it (here, then the
            # repository root); output_dir is written where the run stands
            found = None if key == "output_dir" else local_model_dir(value)
            other = found or Path(os.path.realpath(value))
            inside = other in export.parents and key != "output_dir"
            if export == other or export in other.parents or inside:
                raise ValueError(
                    f"expected export_dir apart from {key} (export_dir is replaced by the "
                    f"trained model), got export_dir={self.export_dir!r} and {key}={value!r}; "
                    "fix: export to another directory, e.g. export_dir=checkpoints/my-prm"
                )

    def prm_format(self) -> PRMFormat:
        return PRMFormat(
            family=PRMFamily.token_classification,
            step_tag=self.step_tag,
            use_chat_template=self.use_chat_template,
            system_prompt=self.system_prompt,
            prompt_template=self.prompt_template,
            step_template=self.step_template,
            positive_label=self.positive_label,
        )


# -- data -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EncodedExample:
    """Token ids of one solution with a target at each step tag."""

    token_ids: tuple[int, ...]
    tag_positions: tuple[int, ...]
    labels: tuple[bool, ...]
    soft_labels: tuple[float, ...]

    @property
    def first_error(self) -> int:
        return first_error_of(self.labels)


def encode_examples(
    examples: Sequence[StepwiseExample], encoder: PrefixEncoder, max_length: int
) -> tuple[list[EncodedExample], int]:
    """Encode with the scorer's own encoder; returns the examples that fit and the number
    dropped for being longer than ``max_length``."""
    out, dropped = [], 0
    for example in examples:
        problem = Problem(id=example.problem_id, question=example.prompt, answer=example.answer)
        encoded = encoder.encode_one(Prefix(problem, example.completions))
        if len(encoded.token_ids) > max_length:
            dropped += 1
            continue
        out.append(
            EncodedExample(
                token_ids=encoded.token_ids,
                tag_positions=encoded.tag_positions,
                labels=example.labels,
                soft_labels=example.soft_labels,
            )
        )
    return out, dropped


def split_by_problem(
    examples: Sequence[StepwiseExample], val_fraction: float, seed: int
) -> tuple[list[StepwiseExample], list[StepwiseExample]]:
    """(train, validation): whole problems go to validation, chosen by a seeded hash."""
    if val_fraction == 0.0:
        return list(examples), []

    def held_out(problem_id: str) -> bool:
        digest = hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction

    train = [e for e in examples if not held_out(e.problem_id or e.prompt)]
    val = [e for e in examples if held_out(e.problem_id or e.prompt)]
    return train, val


def unique_solutions(examples: Sequence[StepwiseExample]) -> list[StepwiseExample]:
    """The first copy of each solution (same prompt, steps and labels), in file order: a
    policy samples its common solutions many times, and each copy costs a forward pass but
    teaches nothing new."""
    seen: set[tuple[str, tuple[str, ...], tuple[bool, ...], tuple[float, ...]]] = set()
    unique = []
    for example in examples:
        key = (example.prompt, example.completions, example.labels, example.soft_labels)
        if key not in seen:
            seen.add(key)
            unique.append(example)
    return unique


def collate(batch: Sequence[EncodedExample], pad_id: int, positive_label: int) -> dict[str, Any]:
    """Right-padded ``input_ids``/``attention_mask``; ``labels`` (class index at tags,
    -100 elsewhere) and ``soft_targets`` (p(right) at tags, -1 elsewhere)."""
    import torch

    width = max(len(e.token_ids) for e in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    soft = torch.full((len(batch), width), -1.0, dtype=torch.float32)
    for row, example in enumerate(batch):
        input_ids[row, : len(example.token_ids)] = torch.tensor(example.token_ids)
        mask[row, : len(example.token_ids)] = 1
        for position, label, p in zip(
            example.tag_positions, example.labels, example.soft_labels, strict=True
        ):
            labels[row, position] = positive_label if label else 1 - positive_label
            soft[row, position] = p
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "soft_targets": soft}


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` placed in rows of at most ``capacity`` tokens, first fit by
    decreasing length (ties by index, so the packing is deterministic)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        if lengths[index] > capacity:
            raise ValueError(
                f"expected examples of at most {capacity} tokens, got {lengths[index]}; "
                "fix: pack with a capacity of at least the longest example"
            )
        row = next((r for r, free in enumerate(room) if lengths[index] <= free), None)
        if row is None:
            rows.append([index])
            room.append(capacity - lengths[index])
        else:
            rows[row].append(index)
            room[row] -= lengths[index]
    return rows


def collate_packed(
    batch: Sequence[EncodedExample], pad_id: int, positive_label: int
) -> dict[str, Any]:
    """The batch of ``collate`` with its examples packed into rows as long as its longest
    example (``pack_rows``), so that little of it is padding. ``position_ids`` restart at 0
    for each example and for a row's trailing padding, and there is no ``attention_mask``:
    transformers then lets a token attend only within its own example
    (``masking_utils.find_packed_sequence_indices``), so every example is computed as if it
    were alone and the loss covers the same step tags as ``collate``'s."""
    import torch

    width = max(len(e.token_ids) for e in batch)
    rows = pack_rows([len(e.token_ids) for e in batch], width)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    soft = torch.full((len(rows), width), -1.0, dtype=torch.float32)
    for row, members in enumerate(rows):
        start = 0
        for index in members:
            example = batch[index]
            length = len(example.token_ids)
            input_ids[row, start : start + length] = torch.tensor(example.token_ids)
            positions[row, start : start + length] = torch.arange(length)
            for position, label, p in zip(
                example.tag_positions, example.labels, example.soft_labels, strict=True
            ):
                labels[row, start + position] = positive_label if label else 1 - positive_label
                soft[row, start + position] = p
            start += length
        positions[row, start:] = torch.arange(width - start)  # padding: a sequence of its own
    return {
        "input_ids": input_ids,
        "position_ids": positions,
        "labels": labels,
        "soft_targets": soft,
    }


PACKED_ATTENTION = ("sdpa", "eager", "flex_attention")  # they apply transformers' packed mask


def check_packing(attention: str | None = None) -> None:
    """``pack=true`` needs transformers to mask a packed row per example, which it does from
    the position ids (``masking_utils.find_packed_sequence_indices``, transformers >= 4.54)
    for the attention implementations in ``PACKED_ATTENTION``. Elsewhere the examples of a
    row would attend to each other without any error, so this raises instead."""
    import transformers

    try:
        from transformers.masking_utils import find_packed_sequence_indices  # noqa: F401
    except ImportError:
        raise ValueError(
            f"expected transformers >= 4.54 for pack=true (it masks packed rows per example), "
            f"got {transformers.__version__}; fix: upgrade transformers, or pack=false"
        ) from None
    if attention is not None and attention not in PACKED_ATTENTION:
        raise ValueError(
            f"expected one of {', '.join(PACKED_ATTENTION)} attention for pack=true, got "
            f"{attention}, which does not mask packed rows of more than one sequence per "
            "example; fix: pack=false, or load the model with sdpa attention"
        )


def check_bf16(config: TrainConfig) -> None:
    """Before any model loads: ``bf16=true`` needs a device with bfloat16. A GPU without it
    (or ``device=cuda`` with no GPU) is refused; a CPU without bfloat16 instructions
    (AVX512-BF16 or AMX on x86) runs it emulated, so that is a warning: it may be slower than
    float32."""
    if not config.bf16:
        return
    import torch

    device = resolve_device(config.device)
    if device.startswith("cuda"):
        if not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
            found = "a GPU without bfloat16" if torch.cuda.is_available() else "no GPU"
            raise ValueError(
                f"expected a device with bfloat16 for bf16=true, got device={config.device} "
                f"with {found}; fix: bf16=false, or device=cpu"
            )
        return
    if device != "cpu":
        return
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # x86; absent elsewhere
    if not any(getattr(torch.cpu, name, lambda: False)() for name in checks):
        log.warning(
            "bf16=true on a CPU without AVX512-BF16 or AMX: bfloat16 may be emulated and slower "
            "than float32; fix: bf16=false on this machine"
        )


def tag_loss(logits: Any, batch: dict[str, Any], loss: LossKind, positive_label: int) -> Any:
    """Mean loss over the step tags of a batch (logits: ``(batch, seq, 2)``)."""
    import torch
    import torch.nn.functional as F

    if loss is LossKind.hard:
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            batch["labels"].reshape(-1),
            ignore_index=IGNORE_INDEX,
        )
    at_tags = batch["soft_targets"] >= 0
    log_probs = torch.log_softmax(logits[at_tags].float(), dim=-1)
    p = batch["soft_targets"][at_tags]
    return -(p * log_probs[:, positive_label] + (1 - p) * log_probs[:, 1 - positive_label]).mean()


class GroupedByLength:
    """Training order in batches of similar lengths, so that a batch pads little.

    Per epoch: a seeded shuffle of the examples, cut into groups of ``group_batches`` batches;
    each group sorted by length and cut into batches; the batches shuffled (a group's short
    last batch goes last, so every batch the loader cuts is one of them). The shuffles are
    seeded by ``seed`` and the epoch (``set_epoch``, which the Trainer's loader calls), so a
    resumed run replays the same order and skips the batches it already trained on
    (transformers' LengthGroupedSampler draws from the global generator instead)."""

    def __init__(
        self, lengths: Sequence[int], batch_size: int, seed: int, group_batches: int = 50
    ) -> None:
        if batch_size < 1 or group_batches < 1:
            raise ValueError(
                f"expected batch_size and group_batches >= 1, got {batch_size}, {group_batches}"
            )
        self.lengths, self.batch_size, self.seed = list(lengths), batch_size, seed
        self.group_batches, self.epoch = group_batches, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[list[int]]:
        import torch

        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        size = self.batch_size * self.group_batches
        full: list[list[int]] = []
        short: list[list[int]] = []
        for start in range(0, len(order), size):
            group = sorted(order[start : start + size], key=lambda i: self.lengths[i])
            for cut in range(0, len(group), self.batch_size):
                batch = group[cut : cut + self.batch_size]
                (full if len(batch) == self.batch_size else short).append(batch)
        shuffled = torch.randperm(len(full), generator=generator).tolist()
        return [full[i] for i in shuffled] + short

    def __iter__(self) -> Iterator[int]:
        return iter([index for batch in self.batches() for index in batch])


# -- the Trainer ----------------------------------------------------------------------------
class TagCollator:
    """``data_collator``: pads a list of ``EncodedExample`` into the batch of ``collate``
    (``packed``: of ``collate_packed``)."""

    def __init__(self, pad_id: int, positive_label: int, packed: bool = False) -> None:
        self.pad_id, self.positive_label, self.packed = pad_id, positive_label, packed

    def __call__(self, batch: Sequence[EncodedExample]) -> dict[str, Any]:
        if self.packed:
            return collate_packed(batch, self.pad_id, self.positive_label)
        return collate(batch, self.pad_id, self.positive_label)


class PRMTrainer(Trainer):  # type: ignore[misc]
    """``transformers.Trainer`` with the loss at the step tags (``tag_loss``: hard or soft
    labels); everything else (schedule, clipping, checkpoints, processes) is the Trainer's."""

    def __init__(
        self,
        *args: Any,
        loss: LossKind,
        positive_label: int,
        group_by_length: bool = False,
        pack: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.loss_kind, self.positive_label = loss, positive_label
        self.group_by_length, self.pack = group_by_length, pack

    def get_train_dataloader(self) -> Any:
        """With ``pack``, training batches are packed (``collate_packed``); validation keeps
        one solution per row, which its first-error metrics read row by row."""
        if not self.pack:
            return super().get_train_dataloader()
        plain = self.data_collator
        assert isinstance(plain, TagCollator)
        self.data_collator = TagCollator(plain.pad_id, plain.positive_label, packed=True)
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = plain

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        """``GroupedByLength`` with ``group_by_length``, else the Trainer's shuffle."""
        if not self.group_by_length:
            return super()._get_train_sampler(train_dataset)
        dataset = cast(
            Sequence[EncodedExample], self.train_dataset if train_dataset is None else train_dataset
        )
        return GroupedByLength(
            [len(example.token_ids) for example in dataset],
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        outputs = model(  # a packed batch has position_ids and no attention_mask
            input_ids=inputs["input_ids"],
            attention_mask=inputs.get("attention_mask"),
            position_ids=inputs.get("position_ids"),
            use_cache=False,  # with a cache transformers skips its per-example mask of packed rows
            # (the Trainer turns the cache off too; this holds outside it)
        )
        value = tag_loss(outputs.logits, inputs, self.loss_kind, self.positive_label)
        return (value, outputs) if return_outputs else value


class TagMetrics:
    """``preprocess_logits_for_metrics`` keeps p(right) per token; ``compute_metrics`` reads it
    at the step tags (``labels != -100``; gathered batches are padded with -100) and returns
    the step accuracy and the ProcessBench F1 of the first-error prediction."""

    def __init__(self, positive_label: int) -> None:
        self.positive_label = positive_label

    def keep_positive(self, logits: Any, labels: Any) -> Any:
        import torch

        return torch.softmax(logits.float(), dim=-1)[..., self.positive_label]

    def __call__(self, prediction: Any) -> dict[str, float]:
        labels = prediction.label_ids
        labels = labels[0] if isinstance(labels, tuple) else labels
        predicted, gold, right, steps = [], [], 0, 0
        for row_probs, row_labels in zip(prediction.predictions, labels, strict=True):
            at_tags = row_labels != IGNORE_INDEX
            scores = row_probs[at_tags].tolist()
            truth = [int(t) == self.positive_label for t in row_labels[at_tags].tolist()]
            right += sum((p >= 0.5) == t for p, t in zip(scores, truth, strict=True))
            steps += len(scores)
            predicted.append(predicted_first_error(scores))
            gold.append(next((i for i, t in enumerate(truth) if not t), -1))
        f1 = processbench_f1(predicted, gold)
        return {
            "step_accuracy": right / max(1, steps),
            **{k: v for k, v in f1.items() if v is not None},
        }


class StopOnDivergence(TrainerCallback):  # type: ignore[misc]
    """A non-finite training loss stops the run with the fix."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise RuntimeError(
                f"training diverged at step {state.global_step}; lower learning_rate"
            )


def epoch_history(log_history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per logged step (each epoch's end, or the end of a ``max_steps`` run) from
    the Trainer's log: epoch, train loss and the validation metrics."""
    rows: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        if "loss" not in entry and "eval_loss" not in entry:
            continue  # the run's closing summary
        row = rows.setdefault(entry["step"], {"step": entry["step"]})
        row["epoch"] = round(entry.get("epoch", 0.0), 2)
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
        for key, value in entry.items():
            if key.startswith("eval_") and not key.endswith(("_runtime", "per_second")):
                row["val_" + key.removeprefix("eval_")] = value
    return [rows[step] for step in sorted(rows)]


# -- training -------------------------------------------------------------------------------
# change no trained weight (output_dir: where the run lives, not what it trains; save_every
# and device: when and where it checkpoints and runs)
RUN_ONLY = (
    "export_dir",
    "max_dropped_share",
    "progress",
    "num_threads",
    "resume",
    "output_dir",
    "save_every",
    "device",
)
PATH_FIELDS = ("train_data", "val_data", "policy_dir", "init_checkpoint")


def run_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What decides a training run's weights: ``settings`` (a ``TrainConfig`` as a dict, or as
    a training log stored it) without ``RUN_ONLY`` fields, every field the dict lacks at its
    default (a field newer than the log: the run ran as that default says), paths resolved
    (``runs/x`` through a link and ``/abs/x`` are one file) and enums as their values."""
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    out = {k: v for k, v in (defaults | settings).items() if k not in RUN_ONLY}
    for key in PATH_FIELDS:
        if out.get(key) is not None:
            out[key] = os.path.realpath(out[key])
    return {k: v.value if isinstance(v, Enum) else v for k, v in out.items()}


def finished_run(output_dir: Path, config: TrainConfig, total_steps: int) -> dict[str, Any] | None:
    """The training log in ``output_dir`` when it records this very run (``run_settings``
    equal) trained to its ``total_steps``; else None."""
    path = output_dir / "training_log.json"
    if not path.exists():
        return None
    logged = dict(json.loads(path.read_text()))
    ours, theirs = run_settings(asdict(config)), run_settings(logged.get("config", {}))
    if ours != theirs or logged.get("total_steps") != total_steps:
        return None
    return logged


def export_model(output_dir: Path, export: Path) -> None:
    """A clean copy of a trained run in ``export``: model, tokenizer and log, no checkpoints."""
    if export.exists() and any(export.iterdir()) and not (export / "config.json").exists():
        raise ValueError(
            f"expected export_dir to be empty or a model checkpoint (it is replaced), got "
            f"{export} with other files; fix: choose another export_dir"
        )
    if (export / "config.json").exists():
        log.warning("export_dir %s held a model: replaced by this run's", export)
    shutil.rmtree(export, ignore_errors=True)
    shutil.copytree(
        output_dir,
        export,
        ignore=shutil.ignore_patterns(
            "checkpoint-*", "init", "hydra", "training_args.bin", FINGERPRINT_FILE
        ),
    )


def initial_checkpoint(config: TrainConfig, output_dir: Path) -> Path:
    """The directory the model starts from: the PRM built from the policy, or a checkpoint."""
    if config.init_checkpoint is not None:
        return Path(resolve_model_path(config.init_checkpoint, key="init_checkpoint"))
    from prm.arith_model import init_prm_from_policy

    assert config.policy_dir is not None
    policy = Path(resolve_model_path(config.policy_dir, key="policy_dir"))
    return Path(
        init_prm_from_policy(
            policy,
            output_dir / "init",
            seed=config.seed,
            extra_layers=config.extra_layers,
            tag_from_separator=config.tag_from_separator,
        )
    )


@contextmanager
def _main_process_first(config: TrainConfig) -> Iterator[None]:
    """Under a multi-process launcher, run the block in the main process before the others
    (accelerate's shared process state; a no-op in a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        yield
        return
    from accelerate import PartialState

    with PartialState(cpu=resolve_device(config.device) == "cpu").main_process_first():
        yield


def load_data(
    config: TrainConfig, tokenizer: Any
) -> tuple[list[EncodedExample], list[EncodedExample], int]:
    """(train, validation, dropped): read, split by problem, encode as the scorer does."""
    encoder = PrefixEncoder(tokenizer, config.prm_format(), max_length=10**9)
    soft = config.loss is LossKind.soft
    examples = read_stepwise(Path(config.train_data), needs_soft_labels=soft)
    if config.val_data:
        train_raw, val_raw = examples, read_stepwise(Path(config.val_data), needs_soft_labels=soft)
    else:
        train_raw, val_raw = split_by_problem(examples, config.val_fraction, config.seed)
    if config.dedupe:
        kept = unique_solutions(train_raw)
        log.info("dedupe: %d of %d training solutions are unique", len(kept), len(train_raw))
        train_raw = kept
    train, dropped = encode_examples(train_raw, encoder, config.max_length)
    val, val_dropped = encode_examples(val_raw, encoder, config.max_length)
    if dropped > config.max_dropped_share * len(train_raw):
        raise ValueError(
            f"expected at most max_dropped_share={config.max_dropped_share:g} of the training "
            f"examples in {config.train_data} longer than max_length={config.max_length} "
            f"tokens, got {dropped} of {len(train_raw)}; fix: raise max_length up to the "
            "model's context (max_position_embeddings in its config.json), train a model "
            "with a longer one, shorten or filter the examples, or accept the loss with "
            "max_dropped_share=1"
        )
    if not train:
        raise ValueError(
            f"expected training examples in {config.train_data}, got none that fit "
            f"(dropped {dropped} longer than max_length={config.max_length}); "
            "fix: raise max_length up to the model's context, or shorten the examples"
        )
    if dropped or val_dropped:
        log.warning(
            "dropped %d train / %d val examples longer than %d tokens",
            dropped,
            val_dropped,
            config.max_length,
        )
    if not val:
        log.warning(
            "no validation examples: %s, so no validation loss or step F1 is reported; "
            "fix: val_data=FILE, or more problems (val_fraction=%s splits by a hash of the "
            "problem id)",
            "val_data holds none that fit"
            if config.val_data
            else f"val_fraction={config.val_fraction} picked no problem",
            config.val_fraction,
        )
    return train, val, dropped + val_dropped


def training_arguments(config: TrainConfig, total_steps: int, has_val: bool) -> Any:
    from transformers import TrainingArguments

    # the project's one device rule (auto: cuda when a GPU is visible, else cpu; never MPS);
    # the Trainer takes bf16 on a CPU only when told it trains there
    on_cpu = resolve_device(config.device) == "cpu"
    return TrainingArguments(
        output_dir=config.output_dir,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=int(config.warmup_ratio * total_steps),
        weight_decay=config.weight_decay,  # not on biases and norms (the Trainer's rule)
        max_grad_norm=config.max_grad_norm,
        eval_strategy=("steps" if config.max_steps else "epoch") if has_val else "no",
        eval_steps=config.max_steps or None,  # with max_steps: one validation, at the end
        logging_strategy=("steps" if config.max_steps else "epoch"),
        logging_steps=config.max_steps or 500,
        save_strategy="steps",
        save_steps=config.save_every,
        save_total_limit=1,
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=on_cpu,
        bf16=config.bf16,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        label_names=["labels", "soft_targets"],
        report_to=[],
        disable_tqdm=not config.progress,
    )


def check_resumable(output_dir: Path, config: TrainConfig, last: str | None) -> None:
    """Refuse (``RunDirError``) to continue a run in ``output_dir`` that started with other
    settings (``run_settings``). A directory from before ``fingerprint.json`` existed is
    judged by the settings its finished run logged."""
    fingerprint_path = output_dir / FINGERPRINT_FILE
    log_path = output_dir / "training_log.json"
    main_process = int(os.environ.get("RANK", "0")) == 0
    if fingerprint_path.exists() and main_process:  # fields since counted as RUN_ONLY: dropped
        stored = json.loads(fingerprint_path.read_text())
        kept = {k: v for k, v in stored.items() if k not in RUN_ONLY}
        if kept != stored:
            fingerprint_path.write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")
    if last and not fingerprint_path.exists() and log_path.exists() and main_process:
        logged = json.loads(log_path.read_text()).get("config", {})
        check_fingerprint(output_dir, run_settings(logged), has_records=False)  # writes it
    if last or main_process:  # only the main process writes a new run's fingerprint
        check_fingerprint(
            output_dir,
            run_settings(asdict(config)),
            has_records=bool(last),
            defaults=run_settings({}),
            ignore=frozenset(RUN_ONLY),
        )


def train_prm(config: TrainConfig, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """Train with ``transformers.Trainer``, validating every epoch; returns the training log
    (also in ``training_log.json``). A rerun resumes from the last checkpoint, only with the
    settings the run started with (``check_resumable``). ``callbacks`` go to the Trainer."""
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    last = get_last_checkpoint(str(output_dir)) if config.resume else None
    check_resumable(output_dir, config, last)  # before anything is written or loaded
    if config.pack:
        check_packing()
    check_bf16(config)
    base = config.init_checkpoint or config.policy_dir
    assert base is not None
    key = "init_checkpoint" if config.init_checkpoint else "policy_dir"
    base_config = AutoConfig.from_pretrained(resolve_model_path(base, key=key))
    context = getattr(base_config, "max_position_embeddings", None)  # the PRM's too
    check_max_length(config.max_length, context, "max_position_embeddings", "max_length")
    with _main_process_first(config):  # one process writes output_dir/init, the others read it
        source = initial_checkpoint(config, output_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    train, val, dropped = load_data(config, tokenizer)
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate / torchrun
    total_steps = config.max_steps or (
        math.ceil(len(train) / (config.batch_size * processes)) * config.epochs
    )
    finished = finished_run(output_dir, config, total_steps) if config.resume else None
    if finished is not None:
        # resuming from the last checkpoint would end at once and rewrite the log without the
        # last epoch's validation (that checkpoint is saved before it runs)
        log.info("%s already holds this finished run; not training again", output_dir)
        if config.export_dir and int(os.environ.get("RANK", "0")) == 0:
            export_model(output_dir, Path(config.export_dir))
        return finished
    model = AutoModelForTokenClassification.from_pretrained(str(source), dtype=torch.float32)
    if model.config.num_labels != 2:
        raise ValueError(
            f"expected a token-classification model with 2 labels at {source}, got "
            f"{model.config.num_labels}; fix: initialise from the policy (policy_dir=PATH)"
        )
    if config.pack:
        check_packing(model.config._attn_implementation)
    metrics = TagMetrics(config.positive_label)
    trainer = PRMTrainer(
        loss=config.loss,
        positive_label=config.positive_label,
        group_by_length=config.group_by_length,
        pack=config.pack,
        model=model,
        args=training_arguments(config, total_steps, has_val=bool(val)),
        train_dataset=train,
        eval_dataset=val or None,
        data_collator=TagCollator(pad_id, config.positive_label),
        compute_metrics=metrics,
        preprocess_logits_for_metrics=metrics.keep_positive,
        callbacks=[StopOnDivergence(), *callbacks],
    )
    if last:
        log.info("resuming from %s", last)
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(output_dir))
    training_log = {
        "config": asdict(config),
        "num_train": len(train),
        "num_val": len(val),
        "dropped_too_long": dropped,
        "total_steps": trainer.state.global_step,
        "history": epoch_history(trainer.state.log_history),
    }
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output_dir))
        (output_dir / "training_log.json").write_text(json.dumps(training_log, indent=2))
        if training_log["history"]:
            from prm.curve import plot_training_curve

            plot_training_curve(output_dir / "training_log.json")
        if config.export_dir:
            export_model(output_dir, Path(config.export_dir))
    return training_log


def main() -> None:
    import hydra
    from hydra.core.config_store import ConfigStore
    from omegaconf import DictConfig, OmegaConf

    ConfigStore.instance().store(name="prm_train_schema", node=TrainConfig)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prm_train")
    def run(raw: DictConfig) -> None:
        with exit_on_input_error():  # every training row read and checked before any model
            config: TrainConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
            quiet_library_bars(config.progress)
            for path in filter(None, (config.train_data, config.val_data)):
                read_stepwise(Path(path))
            training_log = train_prm(config)  # a run directory of other settings: one line
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():  # under accelerate / torchrun:
            dist.destroy_process_group()  # a gloo group left open aborts the process at exit
        print(json.dumps(training_log["history"], indent=2))
        print(f"PRM checkpoint: {config.export_dir or config.output_dir}")

    run()


if __name__ == "__main__":
    main()
