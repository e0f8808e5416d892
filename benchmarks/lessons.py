"""The paper's main ablations (arXiv 2501.07301), in miniature, with this repo's pipeline.

PRMs trained on the same sampled solutions with MC, judge (the arithmetic calculator) and
consensus labels, hard and soft, with the same training budget (optimizer steps), compared
on best-of-N accuracy (the same N candidates for every PRM) and on step-error F1 (ProcessBench
format, true labels from the checker); then product versus min versus last aggregation.

Needs the labelled data of `make prm` (runs/prm/labels/{mc,calculator,consensus}) and the
ProcessBench export of `python benchmarks/prm_processbench.py` (runs/processbench). A variant
``labels:loss`` trains on ``<--labels>/<labels>/stepwise.jsonl``; `make prm` labels by
early-stop MC, whose soft labels are the hard ones, so a soft variant needs a full-mode MC run
in its own directory, e.g. on the first 8,192 samples:

    python -m prm.label labeller=mc labeller.early_stop=false limit=8192 \
        samples=runs/prm/samples/samples.jsonl output_dir=runs/prm/labels/mc_full \
        policy.model=checkpoints/arith-verifier-base policy.backend=hf report=true
    python benchmarks/lessons.py [--steps 150] [--problems 200] [--n 16] \
        [--variants mc:hard consensus:hard mc_full:hard mc_full:soft]

Writes benchmarks/results/<--name, lessons>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from prm.label.quality import describe_mc, mc_run
from prm.processbench import evaluate_subset, load_subset
from prm.scoring import build_scorer
from prm.stepwise import read_stepwise
from prm.train import RUN_ONLY, LossKind, TrainConfig, run_settings, train_prm
from search.aggregation import Aggregation, aggregate
from search.envs.arith.world import make_split
from search.generators import build_generator
from search.grading import answers_match
from search.guards import call_scorer
from search.inputs import InputError
from search.rundir import FINGERPRINT_FILE, differences, fingerprint
from search.selection import Select, pick
from search.types import Candidate, Prefix, Until

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = [
    ("mc", "hard"),
    ("mc", "soft"),
    ("calculator", "hard"),
    ("consensus", "hard"),
    ("consensus", "soft"),
]


def train_config(
    labels: Path, loss: str, steps: int, batch_size: int, out: Path, init: str
) -> TrainConfig:
    return TrainConfig(
        train_data=str(labels),
        policy_dir=init,
        output_dir=str(out),
        export_dir=str(out / "final"),
        loss=LossKind(loss),
        max_steps=steps,  # the same optimizer budget for every variant, whatever its data size
        batch_size=batch_size,
        progress=False,
        resume=True,
    )


def check_workdir(config: TrainConfig, variant: str) -> None:
    """Refuse, before any model loads, to resume a variant's run in ``--workdir`` that
    started with other settings (e.g. another ``--steps``): ``train_prm`` would refuse it
    only after the candidates are generated, naming its own settings, not this script's."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(config.output_dir)
    stored = out / FINGERPRINT_FILE
    if not stored.is_file() or get_last_checkpoint(str(out)) is None:
        return  # nothing to resume: train_prm starts afresh (or judges a pre-fingerprint run)
    changed = differences(
        fingerprint(json.loads(stored.read_text()), frozenset(RUN_ONLY)),
        run_settings(asdict(config)),
        defaults=run_settings({}),
    )
    if changed:
        raise ValueError(
            f"expected {out} (the run of {variant} under --workdir) to hold a run with this "
            f"run's settings, got {len(changed)} different: {'; '.join(changed)}; fix: pass a "
            "new --workdir, or rerun with the settings that run started with"
        )


def check_variant(labels: Path, variant: str) -> None:
    """A ``labels:loss`` pair that can be trained: its labels exist, and soft labels are MC
    estimates (a full-mode MC run, or a consensus of one)."""
    labeller, _, loss = variant.partition(":")
    if loss not in {kind.value for kind in LossKind}:
        raise ValueError(
            f"expected a variant labels:loss with loss hard or soft, got {variant!r}; "
            "fix: e.g. consensus:hard"
        )
    data = labels / labeller / "stepwise.jsonl"
    if not data.exists():
        raise FileNotFoundError(
            f"expected the labels of {variant!r} at {data}, got none; fix: run `make prm` (or "
            "python -m prm.label ... output_dir=<labels>/<name>) or pass --labels"
        )
    if loss == "soft":
        mc = mc_run(data.parent / "records.jsonl")
        if mc is None or mc["early_stop"]:
            raise ValueError(
                f"expected soft labels from a full-mode MC run for {variant!r}, got "
                f"{'no MC labels' if mc is None else 'early-stop MC (soft = hard)'} in "
                f"{data.parent}; fix: label with labeller.early_stop=false (and a consensus of "
                "it), or train this variant with loss hard"
            )


def best_of_n(scorer: Any, problems: list[Any], generations: list[Any], how: Aggregation) -> float:
    solutions = [
        Prefix(p, c.steps)
        for p, g in zip(problems, generations, strict=True)
        for c in g.continuations
    ]
    scores = call_scorer(scorer, solutions).scores
    n = len(generations[0].continuations)
    right = 0
    for index, (problem, generation) in enumerate(zip(problems, generations, strict=True)):
        candidates = tuple(
            Candidate(
                steps=c.steps,
                finished=c.finished,
                num_tokens=c.num_tokens,
                answer=None,
                step_scores=tuple(s),
                score=aggregate(s, how),
            )
            for c, s in zip(
                generation.continuations, scores[index * n : (index + 1) * n], strict=True
            )
        )
        from search.answers import extract_answer

        candidates = tuple(
            replace(c, answer=extract_answer(c.steps[-1]) if c.steps else None) for c in candidates
        )
        right += answers_match(pick(candidates, Select.prm), problem.answer)
    return right / len(problems)


def majority(problems: list[Any], generations: list[Any]) -> float:
    from search.answers import extract_answer

    right = 0
    for problem, generation in zip(problems, generations, strict=True):
        candidates = tuple(
            Candidate(
                steps=c.steps,
                finished=c.finished,
                num_tokens=c.num_tokens,
                answer=extract_answer(c.steps[-1]) if c.steps else None,
            )
            for c in generation.continuations
        )
        right += answers_match(pick(candidates, Select.majority), problem.answer)
    return right / len(problems)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", default="runs/prm/labels")
    parser.add_argument("--processbench", default="runs/processbench/arith-test-policy.json")
    parser.add_argument("--workdir", default="runs/lessons")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", default="checkpoints/arith-verifier-base")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[f"{labels}:{loss}" for labels, loss in VARIANTS],
        help="labeller:loss pairs, e.g. mc:hard consensus:soft (soft needs full-mode MC labels)",
    )
    parser.add_argument("--name", default="lessons", help="results file name")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="rewrite <name>.md from <name>.json alone (no training, evaluation or runs needed)",
    )
    args = parser.parse_args()
    try:
        if args.rerender:
            rerender(args.name)
            return
        labels = Path(args.labels)
        workdir = Path(args.workdir)
        for variant in args.variants:  # every input checked before any model loads
            check_variant(labels, variant)
        bench = read_processbench(Path(args.processbench))
        for variant in args.variants:
            labeller, loss = variant.split(":")
            config = train_config(
                labels / labeller / "stepwise.jsonl",
                loss,
                args.steps,
                args.batch_size,
                workdir / f"{labeller}-{loss}",
                args.init,
            )
            check_workdir(config, variant)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    start = time.perf_counter()

    problems = make_split("test", size=args.problems)
    generator = build_generator(
        "checkpoints/arith-policy",
        seed=args.seed,
        max_tokens=160,
        dtype="float32",
        use_chat_template=False,
        hf={"batch_size": 1024},
    )
    generations = generator.generate([Prefix(p) for p in problems], args.n, Until.end)

    rows = []
    for variant in args.variants:
        labeller, loss = variant.split(":")
        data = labels / labeller / "stepwise.jsonl"
        size = len(read_stepwise(data))
        out = workdir / f"{labeller}-{loss}"
        config = train_config(data, loss, args.steps, args.batch_size, out, args.init)
        train_prm(config)
        assert config.export_dir is not None  # train_config sets it
        model = Path(config.export_dir)
        scorer = build_scorer(model=str(model), backend="hf")
        result, _ = evaluate_subset("arith", bench, scorer, batch_size=128)
        row: dict[str, Any] = {
            "labels": labeller,
            "mc": mc_mode(data.parent),
            "loss": loss,
            "train_solutions": size,
            "f1": result.f1,
            "error_accuracy": result.error_accuracy,
            "correct_accuracy": result.correct_accuracy,
        }
        for how in (Aggregation.min, Aggregation.prod, Aggregation.last):
            row[f"bon_{how.value}"] = best_of_n(scorer, problems, generations, how)
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {
        "args": vars(args),
        "rows": rows,
        "majority": majority(problems, generations),
        "processbench_samples": len(bench),
        "wall_s": time.perf_counter() - start,
    }
    write(report)


def mc_mode(labels_dir: Path) -> str:
    """The MC column: how a labels run's MC labels were rolled out ("-": none)."""
    mc = mc_run(labels_dir / "records.jsonl")
    return "-" if mc is None else describe_mc(mc, short=True)


def write(report: dict[str, Any]) -> None:
    """``lessons.{json,md}`` from a run's report."""
    args = report["args"]

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    lines = [
        f"{args['problems']} test problems, best-of-{args['n']} (the same candidates for every "
        f"PRM; majority vote {pct(report['majority'])}); step-error F1 on the policy's own test "
        f"solutions ({report['processbench_samples']} samples). Every PRM: {args['steps']} "
        f"optimizer steps of batch {args['batch_size']}, initialised from `{args['init']}`. "
        "Numbers in %. Labels: a labelling run's directory under `--labels`; MC: how its MC "
        "labels were rolled out (early stop: hard labels only; right answers trusted: a "
        "finished solution with the right answer is labelled right without rollouts; full: "
        "every prefix rolled out, soft label = share of right rollouts).",
        "",
        "| labels | MC | loss | solutions kept | step F1 | BoN min | BoN prod | BoN last |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['labels']} | {row['mc']} | {row['loss']} | {row['train_solutions']} | "
            f"{pct(row['f1'])} | "
            f"{pct(row['bon_min'])} | {pct(row['bon_prod'])} | {pct(row['bon_last'])} |"
        )
    text = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    name = args["name"]
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{name}.md").write_text(text + "\n")
    print(text)


def read_processbench(path: Path) -> list[Any]:
    """The ``--processbench`` samples, read before any model loads (``load_subset`` checks
    them); a missing file is named with the command that writes it."""
    if not path.is_file():
        raise FileNotFoundError(
            f"expected --processbench {path} to be a ProcessBench file, got no such file; fix: "
            "make it with `python benchmarks/prm_processbench.py` (it writes "
            "runs/processbench/arith-test-policy.json), or pass --processbench PATH"
        )
    try:
        return load_subset(path)
    except InputError as error:
        raise InputError(f"--processbench: {error}") from None


def rerender(name: str = "lessons") -> None:
    """Rewrite the table of the last run from ``<name>.json`` alone (nothing is trained or
    evaluated): the MC column is read afresh from a labels run's fingerprint where that run
    is on this machine, else kept as the JSON recorded it (a fresh clone has no runs)."""
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"expected {path} to re-render, got no such file; fix: run "
            f"`python benchmarks/lessons.py --name {name}` (without --rerender) first"
        )
    report = json.loads(path.read_text())
    report["args"].setdefault("name", name)
    labels = Path(report["args"]["labels"])
    kept = []
    for row in report["rows"]:
        run = labels / row["labels"]
        try:
            row["mc"] = mc_mode(run)
        except FileNotFoundError:
            if "mc" not in row:
                raise FileNotFoundError(
                    f"expected {run / 'fingerprint.json'} for the MC column of "
                    f"{row['labels']!r} ({path} records none), got no such file; fix: make "
                    "the labels with `make prm` (or pass the labels run's directory as "
                    "--labels and rerun without --rerender)"
                ) from None
            kept.append(row["labels"])
    if kept:
        print(
            f"MC column of {', '.join(dict.fromkeys(kept))} as {path.name} recorded it: their "
            f"labels runs are not under {labels}",
            file=sys.stderr,
        )
    if "processbench_samples" not in report:
        bench = Path(report["args"]["processbench"])
        try:
            report["processbench_samples"] = len(read_processbench(bench))
        except FileNotFoundError as error:
            raise FileNotFoundError(f"{path} records no processbench_samples: {error}") from None
    write(report)


if __name__ == "__main__":
    main()
