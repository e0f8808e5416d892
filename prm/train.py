"""Stage 3 of the PRM pipeline: train a token-classification PRM on a stepwise dataset.

The input of a solution is exactly what the embedded scorer reads
(``prm.scoring.encoding.PrefixEncoder`` with the format below: ``PLAIN_TEMPLATE`` then every
step followed by the step tag and a blank line); the loss is taken at the step-tag tokens
only (every other position is ignored):

- ``loss=hard``: cross-entropy on the hard labels (the paper's choice, arXiv 2501.07301 §3);
- ``loss=soft``: cross-entropy against the soft target ``[1 - p, p]`` (``p`` = the MC
  estimate). With a 2-label softmax this is also the BCE of the positive-class probability
  against ``p``, and differs from KL(target || model) by a constant.

The model starts from the policy (``prm.model.init_prm_from_policy``: the policy's weights
with a fresh 2-label head, positive label 1) or from a PRM checkpoint (``init_checkpoint``).
Each epoch ends with a validation pass reporting the ProcessBench F1 of the first-error
prediction (first step with p(right) < 0.5, or none): the harmonic mean of the accuracy on
solutions with an error and on error-free ones.

    python -m prm.train                                   # conf/prm_train.yaml
    python -m prm.train train_data=runs/prm/labels/mc/stepwise.jsonl loss=soft epochs=3

``output_dir`` receives the final model and tokenizer (Hugging Face format, what both scorer
backends load) with ``training_log.json``; ``output_dir/checkpoint-last`` holds the latest
model plus ``trainer_state.pt`` (optimizer, step, history), and a rerun resumes from it.
``export_dir`` (optional) receives a clean copy of the final checkpoint and its log only,
e.g. ``checkpoints/arith-prm`` for the shipped PRM.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from prm.arith_model import EMBEDDED_PRM_FORMAT
from prm.scoring.encoding import PrefixEncoder
from prm.scoring.format import PRMFamily, PRMFormat
from prm.stepwise import StepwiseExample, read_stepwise
from search.optim import adamw_without_decay_on_norms
from search.resolve import CONF_DIR, resolve_model_path
from search.types import Prefix, Problem

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
STATE_FILE = "trainer_state.pt"
LAST_CHECKPOINT = "checkpoint-last"


class LossKind(str, Enum):
    hard = "hard"
    soft = "soft"


@dataclass
class TrainConfig:
    """``conf/prm_train.yaml``.

    Exactly one of ``policy_dir`` (initialise from the policy checkpoint) and ``init_checkpoint``
    (continue from a token-classification PRM) is set. Without ``val_data``, ``val_fraction``
    of the *problems* (all their samples together) is held out for validation.
    Examples longer than ``max_length`` tokens are dropped and counted.
    """

    train_data: str = "runs/prm/labels/consensus/stepwise.jsonl"
    val_data: str | None = None
    val_fraction: float = 0.1
    output_dir: str = "runs/prm/model"
    export_dir: str | None = None
    policy_dir: str | None = "checkpoints/arith-policy"
    init_checkpoint: str | None = None
    loss: LossKind = LossKind.hard
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 256
    save_every: int = 200
    resume: bool = True
    seed: int = 0
    num_threads: int = 0  # 0: torch's default
    device: str = "auto"
    progress: bool = True
    # the input layout: fields of prm.scoring.format.PRMFormat (token_classification);
    # defaults are the embedded PRM's (prm.model.EMBEDDED_PRM_FORMAT)
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
                f"{self.epochs}, {self.batch_size}, {self.save_every}"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"expected 0 <= val_fraction < 1, got {self.val_fraction}")

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
        return next((i for i, label in enumerate(self.labels) if not label), -1)


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


# -- validation -----------------------------------------------------------------------------
def predicted_first_error(scores: Sequence[float], threshold: float = 0.5) -> int:
    return next((i for i, p in enumerate(scores) if p < threshold), -1)


def processbench_f1(predicted: Sequence[int], gold: Sequence[int]) -> dict[str, float | None]:
    """ProcessBench: accuracy on erroneous samples (exact first-error index), on correct ones
    (predicted none), and their harmonic mean (``None`` when a side has no samples)."""
    pairs = list(zip(predicted, gold, strict=True))
    wrong = [p == g for p, g in pairs if g != -1]
    right = [p == -1 for p, g in pairs if g == -1]
    acc_error = sum(wrong) / len(wrong) if wrong else None
    acc_correct = sum(right) / len(right) if right else None
    f1 = None
    if acc_error is not None and acc_correct is not None:
        total = acc_error + acc_correct
        f1 = 0.0 if total == 0 else 2 * acc_error * acc_correct / total
    return {"error_accuracy": acc_error, "correct_accuracy": acc_correct, "f1": f1}


def evaluate(
    model: Any, examples: Sequence[EncodedExample], config: TrainConfig, pad_id: int, device: str
) -> dict[str, Any]:
    """Validation loss, step accuracy (hard labels) and ProcessBench F1."""
    import torch

    if not examples:
        return {}
    model.eval()
    losses, right_steps, steps = [], 0, 0
    predicted, gold = [], []
    with torch.no_grad():
        for start in range(0, len(examples), config.batch_size):
            chunk = examples[start : start + config.batch_size]
            batch = {
                k: v.to(device) for k, v in collate(chunk, pad_id, config.positive_label).items()
            }
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            losses.append(float(tag_loss(logits, batch, config.loss, config.positive_label)))
            probs = torch.softmax(logits.float(), dim=-1)[..., config.positive_label].cpu()
            for row, example in enumerate(chunk):
                scores = probs[row, list(example.tag_positions)].tolist()
                right_steps += sum(
                    (p >= 0.5) == label for p, label in zip(scores, example.labels, strict=True)
                )
                steps += len(scores)
                predicted.append(predicted_first_error(scores))
                gold.append(example.first_error)
    model.train()
    return {
        "val_loss": sum(losses) / len(losses),
        "val_step_accuracy": right_steps / steps,
        **{f"val_{k}": v for k, v in processbench_f1(predicted, gold).items()},
    }


# -- training -------------------------------------------------------------------------------
def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def initial_checkpoint(config: TrainConfig, output_dir: Path) -> Path:
    """The directory the model starts from: the PRM built from the policy, or a checkpoint."""
    if config.init_checkpoint is not None:
        return Path(resolve_model_path(config.init_checkpoint))
    from prm.arith_model import init_prm_from_policy

    assert config.policy_dir is not None
    policy = Path(resolve_model_path(config.policy_dir))
    return Path(init_prm_from_policy(policy, output_dir / "init", seed=config.seed))


def save_checkpoint(
    model: Any, tokenizer: Any, directory: Path, state: dict[str, Any] | None = None
) -> None:
    """Model + tokenizer in Hugging Face format (and the trainer state), written to a
    temporary directory first so a killed save never leaves a half checkpoint."""
    import torch

    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    if state is not None:
        torch.save(state, tmp / STATE_FILE)
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def train_prm(config: TrainConfig) -> dict[str, Any]:
    """Train, validating every epoch; returns the training log (also in training_log.json)."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    last = output_dir / LAST_CHECKPOINT
    resuming = config.resume and (last / STATE_FILE).exists()
    source = last if resuming else initial_checkpoint(config, output_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = AutoModelForTokenClassification.from_pretrained(str(source), dtype=torch.float32)
    if model.config.num_labels != 2:
        raise ValueError(
            f"expected a token-classification model with 2 labels at {source}, got "
            f"{model.config.num_labels}; fix: initialise from the policy (policy_dir=PATH)"
        )
    model.to(device)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id

    encoder = PrefixEncoder(tokenizer, config.prm_format(), max_length=10**9)
    examples = read_stepwise(Path(config.train_data))
    if config.val_data:
        train_raw, val_raw = examples, read_stepwise(Path(config.val_data))
    else:
        train_raw, val_raw = split_by_problem(examples, config.val_fraction, config.seed)
    train, dropped = encode_examples(train_raw, encoder, config.max_length)
    val, val_dropped = encode_examples(val_raw, encoder, config.max_length)
    if not train:
        raise ValueError(
            f"expected training examples in {config.train_data}, got none that fit "
            f"(dropped {dropped} longer than max_length={config.max_length})"
        )
    if dropped or val_dropped:
        log.warning(
            "dropped %d train / %d val examples longer than %d tokens",
            dropped,
            val_dropped,
            config.max_length,
        )

    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = int(config.warmup_ratio * total_steps)

    def lr_at(step: int) -> float:
        if step < warmup:
            return config.learning_rate * (step + 1) / warmup
        return config.learning_rate * max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    optimizer = adamw_without_decay_on_norms(model, config.learning_rate, config.weight_decay)
    history: list[dict[str, Any]] = []
    step = 0
    if resuming:
        state = torch.load(last / STATE_FILE, weights_only=False)
        if state["num_train"] != len(train) or state["total_steps"] != total_steps:
            raise ValueError(
                f"expected to resume the same run ({state['num_train']} examples, "
                f"{state['total_steps']} steps), got {len(train)} examples and {total_steps} "
                f"steps; fix: resume=false or a new output_dir"
            )
        optimizer.load_state_dict(state["optimizer"])
        step, history = state["step"], state["history"]
        torch.set_rng_state(state["torch_rng"])
        log.info("resuming from %s at step %d of %d", last, step, total_steps)
    else:
        torch.manual_seed(config.seed)

    def state_dict() -> dict[str, Any]:
        return {
            "optimizer": optimizer.state_dict(),
            "step": step,
            "history": history,
            "torch_rng": torch.get_rng_state(),
            "num_train": len(train),
            "total_steps": total_steps,
            "config": asdict(config),
        }

    progress: Any = None
    if config.progress:
        from tqdm import tqdm

        progress = tqdm(total=total_steps, initial=step, desc="training PRM", unit="step")
    start_time = time.perf_counter()
    model.train()
    running: list[float] = []
    while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        order = list(range(len(train)))
        random.Random(config.seed * 100_003 + epoch).shuffle(order)
        for batch_index in range(offset, steps_per_epoch):
            ids = order[batch_index * config.batch_size : (batch_index + 1) * config.batch_size]
            batch = {
                k: v.to(device)
                for k, v in collate([train[i] for i in ids], pad_id, config.positive_label).items()
            }
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            loss = tag_loss(logits, batch, config.loss, config.positive_label)
            if not torch.isfinite(loss):
                raise RuntimeError(f"training diverged at step {step}; lower learning_rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            step += 1
            running.append(loss.item())
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{running[-1]:.4f}")
            if step % config.save_every == 0 and step % steps_per_epoch:
                save_checkpoint(model, tokenizer, last, state_dict())
        row = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": sum(running) / len(running) if running else None,
            **evaluate(model, val, config, pad_id, device),
            "minutes": (time.perf_counter() - start_time) / 60,
        }
        running = []
        history.append(row)
        log.info(json.dumps(row))
        save_checkpoint(model, tokenizer, last, state_dict())
    if progress is not None:
        progress.close()

    model.save_pretrained(str(output_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(output_dir))
    training_log = {
        "config": asdict(config),
        "num_train": len(train),
        "num_val": len(val),
        "dropped_too_long": dropped + val_dropped,
        "total_steps": total_steps,
        "history": history,
    }
    (output_dir / "training_log.json").write_text(json.dumps(training_log, indent=2))
    if config.export_dir:
        export = Path(config.export_dir)
        export.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(export), safe_serialization=True)
        tokenizer.save_pretrained(str(export))
        (export / "training_log.json").write_text(json.dumps(training_log, indent=2))
    return training_log


def main() -> None:
    import hydra
    from hydra.core.config_store import ConfigStore
    from omegaconf import DictConfig, OmegaConf

    ConfigStore.instance().store(name="prm_train_schema", node=TrainConfig)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prm_train")
    def run(raw: DictConfig) -> None:
        config: TrainConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
        training_log = train_prm(config)
        print(json.dumps(training_log["history"], indent=2))
        print(f"PRM checkpoint: {config.export_dir or config.output_dir}")

    run()


if __name__ == "__main__":
    main()
