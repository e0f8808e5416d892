"""Supervised fine-tuning of the embedded tiny policy on the arithmetic world's gold solutions.

A Qwen2-architecture causal LM, trained from scratch with the loss on the solution tokens
only. The result is a Hugging Face checkpoint (``config.json``, ``model.safetensors``,
tokenizer files) that the transformers and vLLM generators load, plus ``training_log.json``
with the loss and validation-accuracy curve.

Rebuild the shipped policy with::

    python -m search.envs.arith.train_policy       # the defaults below: 22 min on 2 CPU cores
    python -m search.envs.arith.train_policy output_dir=/tmp/policy model.num_hidden_layers=2

The schedule is 600 steps (warmup, then linear decay) and the shipped policy is the model
after 400 of them (``stop_after``): run to the end, the policy is right 81% of the time when
sampling on validation problems, which leaves search no room (the project's target is a
single-sample accuracy between 25% and 75% with pass@16 at least 1.5 times higher).
``training_log.json`` records the curve.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search.envs.arith.tokenizer import build_tokenizer
from search.envs.arith.world import Split, make_split
from search.optim import adamw_without_decay_on_norms, warmup_linear_decay
from search.prompting import render_training_text
from search.resolve import CONF_DIR
from search.types import Problem

log = logging.getLogger(__name__)


@dataclass
class ModelShape:
    """Qwen2 shape. head_dim = hidden_size / num_attention_heads must be 64 for vLLM's CPU
    attention."""

    hidden_size: int = 192
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 3
    num_key_value_heads: int = 3
    max_position_embeddings: int = 256


@dataclass
class PolicyTrainConfig:
    output_dir: str = "checkpoints/arith-policy"
    num_steps: int = 600  # length of the learning-rate schedule (warmup, then linear decay)
    stop_after: int = 400  # stop (and save) after this many steps; 0: run the whole schedule
    batch_size: int = 64
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    eval_every: int = 100
    eval_problems: int = 200
    num_train_problems: int = 200_000
    seed: int = 0
    num_threads: int = 0  # 0: torch's default
    init_from: str = ""  # continue from this checkpoint instead of a fresh model
    model: ModelShape = field(default_factory=ModelShape)


def build_model(tokenizer: Any, shape: ModelShape, seed: int) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if shape.hidden_size % shape.num_attention_heads:
        raise ValueError(
            f"expected hidden_size divisible by num_attention_heads, got "
            f"{shape.hidden_size} and {shape.num_attention_heads}"
        )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=shape.max_position_embeddings,
        tie_word_embeddings=True,
        rope_theta=10_000.0,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",  # type: ignore[call-arg]
    )
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def encode_example(tokenizer: Any, problem: Problem) -> tuple[list[int], list[int]]:
    """(input_ids, labels) with labels -100 on the prompt: loss on the solution only."""
    prompt, solution = render_training_text(problem.question, problem.gold_steps)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    solution_ids = tokenizer(solution, add_special_tokens=False)["input_ids"]
    solution_ids = [*solution_ids, tokenizer.eos_token_id]
    return prompt_ids + solution_ids, [-100] * len(prompt_ids) + solution_ids


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def solve_rate(
    model: Any, tokenizer: Any, problems: list[Problem], temperature: float = 0.0, seed: int = 0
) -> float:
    """Share of problems whose solution (greedy, or sampled at ``temperature``) ends with the
    gold answer."""
    import torch

    from search.envs.arith.checker import check_solution
    from search.prompting import render_prompt
    from search.types import split_steps

    model.eval()
    torch.manual_seed(seed)
    prompts = [render_prompt(p.question, (), tokenizer=None) for p in problems]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(
            **batch,
            max_new_tokens=128,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_k=0 if temperature > 0 else None,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    model.train()
    right = sum(
        check_solution(p, split_steps(t)).answer_correct
        for p, t in zip(problems, texts, strict=True)
    )
    return right / len(problems)


def train_policy(config: PolicyTrainConfig) -> Path:
    import torch

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    if config.init_from:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(config.init_from, dtype=torch.float32)
        torch.manual_seed(config.seed)
    else:
        model = build_model(tokenizer, config.model, config.seed)
    num_params = sum(p.numel() for p in model.parameters())
    log.info("policy: %d parameters", num_params)

    problems = make_split(Split.train, size=config.num_train_problems)
    val = make_split(Split.validation, size=config.eval_problems)
    rng = random.Random(config.seed)
    examples = [encode_example(tokenizer, p) for p in problems]

    optimizer = adamw_without_decay_on_norms(
        model, config.learning_rate, config.weight_decay, betas=(0.9, 0.98)
    )

    history: list[dict[str, float]] = []
    order: list[int] = []
    start = time.perf_counter()
    model.train()
    running = 0.0
    total = config.stop_after or config.num_steps
    if not 0 < total <= config.num_steps:
        raise ValueError(
            f"expected 0 < stop_after <= num_steps, got {config.stop_after} and "
            f"{config.num_steps}; fix: stop_after=0 runs the whole schedule"
        )
    for step in range(total):
        if len(order) < config.batch_size:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            order += fresh
        batch_ids, order = order[: config.batch_size], order[config.batch_size :]
        batch = collate([examples[i] for i in batch_ids], tokenizer.pad_token_id)
        for group in optimizer.param_groups:
            group["lr"] = warmup_linear_decay(
                step, config.learning_rate, config.warmup_steps, config.num_steps
            )
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running += loss.item()
        last = step + 1 == total
        if (step + 1) % config.eval_every == 0 or last:
            span = config.eval_every if not last else (step % config.eval_every) + 1
            accuracy = solve_rate(model, tokenizer, val)
            sampled = solve_rate(model, tokenizer, val, temperature=1.0, seed=step)
            elapsed = time.perf_counter() - start
            row = {
                "step": step + 1,
                "loss": running / span,
                "val_greedy_accuracy": accuracy,
                "val_sampled_accuracy": sampled,
                "minutes": elapsed / 60,
            }
            running = 0.0
            history.append(row)
            model.save_pretrained(str(out / "steps" / f"step-{step + 1}"))
            log.info(json.dumps(row))
            if not math.isfinite(row["loss"]):
                raise RuntimeError(f"training diverged at step {step + 1}; lower learning_rate")
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.model_max_length = model.config.max_position_embeddings  # its own context
    tokenizer.save_pretrained(str(out))
    (out / "training_log.json").write_text(
        json.dumps(
            {
                "config": asdict(config),
                "num_parameters": num_params,
                "minutes": (time.perf_counter() - start) / 60,
                "history": history,
            },
            indent=2,
        )
    )
    return out


def main() -> None:
    import hydra
    from hydra.core.config_store import ConfigStore
    from omegaconf import DictConfig, OmegaConf

    ConfigStore.instance().store(name="arith_train_policy_schema", node=PolicyTrainConfig)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="arith_train_policy")
    def run(raw: DictConfig) -> None:
        config: PolicyTrainConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
        print(f"policy: {train_policy(config)}")

    run()


if __name__ == "__main__":
    main()
