"""``python -m prm.processbench``: how well a PRM finds the first wrong step (ProcessBench,
arXiv 2412.06559, the benchmark arXiv 2501.07301 reports its PRMs on).

    python -m prm.processbench scorer=qwen25_math_prm_7b                # the four subsets
    python -m prm.processbench scorer=arith_prm subsets=[runs/processbench/arith_test_corrupt.json]
    python -m prm.processbench scorer=qwen25_math_prm_7b subsets=[gsm8k] limit=50 threshold=0.6

A subset is a JSON list of objects with ``problem``, ``steps`` (list of strings) and
``label``, the index of the first wrong step or -1 when every step is right (optional:
``id``, ``final_answer_correct``). The PRM (any ``Scorer``: the ``scorer`` group, a
``_target_`` node, as for ``python -m search``) scores every step of each solution in batches
of ``batch_size`` solutions; the predicted label is the first step scoring below
``threshold``, -1 when none does. Per subset:

- ``error_accuracy``: on the erroneous samples, prediction == label;
- ``correct_accuracy``: on the correct samples, prediction == -1;
- ``f1``: the harmonic mean of the two (ProcessBench's score); ``mean_f1`` over subsets;
- ``rawp_*``: on "right answer, wrong process" samples (``final_answer_correct`` and a
  wrong step), the share the PRM flags at all and the share it flags at the right step;
- ``min_on_final_step_share``: ``search.metrics.min_on_final_step_share``.

Writes ``processbench.json`` (all of the above and the config) and ``predictions.jsonl``
(one line per sample: label, prediction and step scores, for threshold sweeps) to
``output_dir`` (default: the Hydra run directory).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from prm.first_error import predicted_first_error, processbench_f1, share
from prm.scoring.encoding import InputTooLong
from search.components import (
    build_component,
    check_component,
    component_name,
    is_arith_dataset,
    is_arith_model,
    locate,
    warn_if_world_mismatch,
)
from search.guards import call_scorer
from search.inputs import (
    InputError,
    check_writable_dir,
    exit_on_input_error,
    exit_on_server_error,
)
from search.metrics import min_on_final_step_share
from search.progress import quiet_library_bars
from search.protocols import Scorer
from search.resolve import CONF_DIR
from search.seeding import derive_seed
from search.types import Prefix, Problem

log = logging.getLogger("prm.processbench")
SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")


@dataclass
class ProcessBenchConfig:
    """Top level of ``conf/processbench.yaml``. A ``subsets`` entry ending in ``.json`` or
    holding a ``/`` is a file path; any other is ``data_dir/<name>.json``."""

    subsets: list[str] = field(default_factory=lambda: list(SUBSETS))
    data_dir: str = "../shared/data/processbench"
    limit: int | None = None  # k samples of each subset, drawn with ``seed``
    seed: int = 0
    threshold: float = 0.5
    batch_size: int = 64  # solutions per scorer call
    output_dir: str | None = None  # null: the Hydra run directory
    progress: bool = True
    scorer: Any = None

    def __post_init__(self) -> None:
        if not self.subsets:
            raise ValueError(
                f"expected at least one subset, got none; fix: subsets=[{','.join(SUBSETS)}]"
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(
                f"expected 0 <= threshold <= 1, got {self.threshold}; fix: e.g. threshold=0.5"
            )
        if self.batch_size < 1:
            raise ValueError(
                f"expected batch_size >= 1, got {self.batch_size}; fix: batch_size=1 or more"
            )
        if self.limit is not None and self.limit < 1:
            raise ValueError(
                f"expected limit >= 1 or null (every sample), got {self.limit}; fix: "
                "limit=1 or more, or limit=null"
            )


@dataclass(frozen=True, slots=True)
class ProcessBenchSample:
    """One solution with its first wrong step (``label``, -1 when all steps are right)."""

    id: str
    problem: str
    steps: tuple[str, ...]
    label: int
    final_answer_correct: bool | None = None

    @property
    def prefix(self) -> Prefix:
        return Prefix(Problem(id=self.id, question=self.problem, answer=""), self.steps)


@dataclass(frozen=True, slots=True)
class SubsetResult:
    """ProcessBench metrics of one subset; accuracies are ``None`` with no such sample."""

    subset: str
    num_samples: int
    num_erroneous: int
    num_correct: int
    error_accuracy: float | None
    correct_accuracy: float | None
    f1: float | None
    num_rawp: int
    rawp_flagged: float | None
    rawp_exact: float | None
    min_on_final_step_share: float | None


def resolve_subset(entry: str, data_dir: Path) -> tuple[str, Path]:
    """(subset name, file) of one ``subsets`` entry."""
    if entry.endswith(".json") or "/" in entry:
        path = Path(entry).expanduser()
        return path.stem, path
    return entry, data_dir / f"{entry}.json"


def load_subset(path: Path, limit: int | None = None, seed: int = 0) -> list[ProcessBenchSample]:
    """The samples of a ProcessBench-format file, checked; with ``limit``, that many drawn
    by ``stratified_draw`` with a seed derived from (``seed``, the file's name), kept in
    file order. (ProcessBench lists its erroneous samples first, so the first k would all be
    erroneous; a plain draw with the exporter's seed could take only correct ones.)"""
    if not path.is_file():
        raise InputError(
            f"expected a ProcessBench file at {path} (resolved: {path.resolve()}), got none; "
            "fix: set data_dir (or PRM_SEARCH_DATA) or pass subsets=[/path/to/subset.json]"
        )
    try:
        rows = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        bad = error.object[error.start : error.start + 1].hex()
        raise InputError(
            f"{path}: expected UTF-8 text, got byte 0x{bad} at byte {error.start}; fix: "
            "re-save the file as UTF-8"
        ) from None
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}:{error.lineno}: expected a JSON list of ProcessBench samples, got malformed "
            f"JSON ({error.msg} at column {error.colno}); fix: repair the file"
        ) from None
    if not isinstance(rows, list):
        raise InputError(f"{path}: expected a JSON list of samples, got {type(rows).__name__}")
    if not rows:
        raise InputError(f"{path}: expected ProcessBench samples, got an empty list")
    samples = [_sample(row, f"{path.stem}-{i}", f"{path}[{i}]") for i, row in enumerate(rows)]
    if limit is None or limit >= len(samples):
        return samples
    return stratified_draw(samples, limit, derive_seed(seed, "processbench", path.stem))


def stratified_draw(
    samples: Sequence[ProcessBenchSample], limit: int, seed: int
) -> list[ProcessBenchSample]:
    """``limit`` samples, erroneous and correct ones in the file's proportions (at least one
    of each when both exist and ``limit`` >= 2), drawn with ``random.Random(seed)`` and kept
    in file order. However the file was made (ProcessBench lists its erroneous samples
    first; the arithmetic export draws with seed 0), both kinds are drawn."""
    wrong = [i for i, s in enumerate(samples) if s.label != -1]
    right = [i for i, s in enumerate(samples) if s.label == -1]
    take_wrong = round(limit * len(wrong) / len(samples))
    if wrong and right and limit >= 2:
        take_wrong = min(max(take_wrong, 1), limit - 1)
    rng = random.Random(seed)
    chosen = rng.sample(wrong, take_wrong) + rng.sample(right, limit - take_wrong)
    return [samples[i] for i in sorted(chosen)]


def _sample(row: Any, default_id: str, where: str) -> ProcessBenchSample:
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected an object, got {type(row).__name__}")
    problem, steps, label = row.get("problem"), row.get("steps"), row.get("label")
    if not isinstance(problem, str) or not problem.strip():
        raise InputError(f"{where}: expected a non-empty string 'problem', got {problem!r:.60}")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise InputError(f"{where}: expected 'steps' to be a non-empty list of strings")
    if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
        raise InputError(
            f"{where}: expected 'label' in [-1, {len(steps) - 1}] (index of the first wrong "
            f"step, -1 for none), got {label!r}"
        )
    final = row.get("final_answer_correct")
    return ProcessBenchSample(
        id=str(row.get("id", default_id)),
        problem=problem,
        steps=tuple(steps),
        label=label,
        final_answer_correct=final if isinstance(final, bool) else None,
    )


def score_samples(
    scorer: Scorer,
    samples: Sequence[ProcessBenchSample],
    batch_size: int,
    progress: bool = False,
    description: str = "scoring",
) -> list[list[float]]:
    """Step scores of every sample: one ``call_scorer`` per ``batch_size`` samples."""
    chunks = [samples[i : i + batch_size] for i in range(0, len(samples), batch_size)]
    iterator: Any = chunks
    if progress:
        from tqdm import tqdm

        iterator = tqdm(chunks, desc=description, unit="batch")
    scores: list[list[float]] = []
    for chunk in iterator:
        scores += call_scorer(scorer, [sample.prefix for sample in chunk]).scores
    return scores


def subset_metrics(
    subset: str,
    samples: Sequence[ProcessBenchSample],
    predictions: Sequence[int],
    step_scores: Sequence[Sequence[float]],
) -> SubsetResult:
    """ProcessBench accuracies and F1, and the diagnostics (see the module docstring)."""
    pairs = list(zip(samples, predictions, strict=True))
    accuracy = processbench_f1(predictions, [s.label for s in samples])
    rawp = [(s, p) for s, p in pairs if s.final_answer_correct and s.label != -1]
    return SubsetResult(
        subset=subset,
        num_samples=len(samples),
        num_erroneous=sum(s.label != -1 for s in samples),
        num_correct=sum(s.label == -1 for s in samples),
        error_accuracy=accuracy["error_accuracy"],
        correct_accuracy=accuracy["correct_accuracy"],
        f1=accuracy["f1"],
        num_rawp=len(rawp),
        rawp_flagged=share([p != -1 for _, p in rawp]),
        rawp_exact=share([p == s.label for s, p in rawp]),
        min_on_final_step_share=min_on_final_step_share(step_scores),
    )


def evaluate_subset(
    subset: str,
    samples: Sequence[ProcessBenchSample],
    scorer: Scorer,
    threshold: float = 0.5,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[SubsetResult, list[dict[str, Any]]]:
    """Score one subset; its metrics and one prediction record per sample."""
    scores = score_samples(scorer, samples, batch_size, progress, description=subset)
    predictions = [predicted_first_error(s, threshold) for s in scores]
    records = [
        {
            "subset": subset,
            "id": sample.id,
            "label": sample.label,
            "prediction": prediction,
            "final_answer_correct": sample.final_answer_correct,
            "step_scores": step_scores,
        }
        for sample, prediction, step_scores in zip(samples, predictions, scores, strict=True)
    ]
    return subset_metrics(subset, samples, predictions, scores), records


def mean_f1(results: Sequence[SubsetResult]) -> float | None:
    """Mean F1 over the subsets (``None`` when a subset has no F1)."""
    values = [r.f1 for r in results]
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def _cell(value: float | None) -> str:
    """A share as a percentage with one decimal, ``-`` when there is none."""
    return "-" if value is None else f"{100 * value:.1f}"


def _same_subsets(named: Sequence[tuple[str, Sequence[SubsetResult]]]) -> list[str]:
    """The subsets every PRM of ``named`` was scored on (the same for all, else ValueError)."""
    subsets = [r.subset for r in named[0][1]] if named else []
    if any([r.subset for r in results] != subsets for _, results in named):
        raise ValueError(
            f"expected every PRM scored on the subsets {subsets}, got "
            f"{[[r.subset for r in results] for _, results in named]}; fix: score them together"
        )
    return subsets


def _rows(results: Sequence[SubsetResult]) -> list[str]:
    """The table cells of each subset, then the mean F1 row (``|``-joined, no outer bars)."""
    rows = [
        f"{r.subset} | {r.num_samples} | {_cell(r.error_accuracy)} | "
        f"{_cell(r.correct_accuracy)} | {_cell(r.f1)} | {_cell(r.rawp_flagged)}"
        for r in results
    ]
    return [*rows, f"mean F1 | | | | {_cell(mean_f1(results))} |"]


_HEADER = "subset | samples | error acc | correct acc | F1 | RAWP flagged"
_ALIGN = "---|---:|---:|---:|---:|---:"


def markdown_table(results: Sequence[SubsetResult]) -> str:
    lines = [f"| {_HEADER} |", f"|{_ALIGN}|"]
    return "\n".join(lines + [f"| {row} |" for row in _rows(results)])


def f1_table(named: Sequence[tuple[str, Sequence[SubsetResult]]]) -> str:
    """Several PRMs' F1 on the same subsets: one row per PRM, one column per subset."""
    subsets = _same_subsets(named)
    lines = [
        "| PRM | " + " | ".join(f"{name} F1" for name in subsets) + " | mean F1 |",
        "|---|" + "---:|" * (len(subsets) + 1),
    ]
    for name, results in named:
        cells = [_cell(r.f1) for r in results] + [_cell(mean_f1(results))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_table(named: Sequence[tuple[str, Sequence[SubsetResult]]]) -> str:
    """Several PRMs' results on the same subsets, one table with a PRM column."""
    _same_subsets(named)
    lines = [f"| PRM | {_HEADER} |", f"|---|{_ALIGN}|"]
    for name, results in named:
        lines += [f"| {name} | {row} |" for row in _rows(results)]
    return "\n".join(lines)


def load_subsets(config: ProcessBenchConfig) -> list[tuple[str, list[ProcessBenchSample]]]:
    """(name, samples) of every subset, read and checked (before any scorer loads)."""
    data_dir = Path(config.data_dir).expanduser()
    loaded = []
    for entry in config.subsets:
        name, path = resolve_subset(entry, data_dir)
        loaded.append((name, load_subset(path, config.limit, config.seed)))
    return loaded


def run_processbench(
    config: ProcessBenchConfig,
    scorer: Scorer,
    output_dir: Path,
    subsets: list[tuple[str, list[ProcessBenchSample]]] | None = None,
    scorer_model: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``scorer`` on every subset (``subsets``: already loaded by
    ``load_subsets``); write the report and predictions; return it. A sample longer than
    the PRM's ``max_length`` is an ``InputError`` naming the subset and the fix
    (``scorer_model``, the PRM's model path or name, picks the fix)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    results: list[SubsetResult] = []
    records: list[dict[str, Any]] = []
    for name, samples in subsets if subsets is not None else load_subsets(config):
        try:
            result, predictions = evaluate_subset(
                name, samples, scorer, config.threshold, config.batch_size, config.progress
            )
        except InputTooLong as error:
            raise InputError(overflow_message([name], [error], scorer_model)) from None
        log.info("%s: F1 %s over %d samples", name, result.f1, result.num_samples)
        results.append(result)
        records += predictions
    report = {
        "scorer": type(scorer).__name__,
        "threshold": config.threshold,
        "limit": config.limit,
        "seed": config.seed,
        "subsets": [asdict(r) for r in results],
        "mean_f1": mean_f1(results),
    }
    (output_dir / "processbench.json").write_text(json.dumps(report, indent=2) + "\n")
    with (output_dir / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return report


ARITH_SUBSET_FIX = (
    "an exported arithmetic subset (python -m search.envs.arith.export, then "
    "subsets=[runs/processbench/arith_test_corrupt.json])"
)


def check_fit(
    subsets: Sequence[tuple[str, Sequence[ProcessBenchSample]]],
    scorer: Mapping[str, Any],
    scorer_model: str | None,
) -> None:
    """Refuse, before the PRM loads, subsets with samples that will not fit the PRM's
    ``max_length``: every sample of every subset is encoded as the scorer will encode it,
    and one message names the subsets, counts the samples that do not fit, names the longest
    and gives a fix that makes them all fit (``overflow_message``). Only for this project's
    scorer (``build_scorer``) with a local tokenizer and config
    (``prm.scoring.factory.local_encoder``); anything else is checked as it scores, one
    sample at a time."""
    from prm.scoring.encoding import OverflowPolicy, PrefixEncoder
    from prm.scoring.factory import build_scorer, local_context, local_encoder

    if locate(str(scorer.get("_target_"))) is not build_scorer:
        return
    settings = {key: value for key, value in scorer.items() if not key.startswith("_")}
    encoder = local_encoder(**settings)
    if encoder is None:
        return
    # the pre-check's own tokenizer warns of every input above its limit: that is the point
    quiet = logging.getLogger("transformers.tokenization_utils_base")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        failing: list[str] = []  # every subset with samples that do not fit: one message
        found: list[tuple[ProcessBenchSample, InputTooLong]] = []
        total = 0
        for name, samples in subsets:
            too_long = _too_long(encoder, samples)
            if too_long:
                failing.append(name)
                found += too_long
                total += len(samples)
        if not found:
            return
        truncation_fits = None
        if encoder.on_overflow is OverflowPolicy.error:
            truncating = PrefixEncoder(
                encoder.tokenizer, encoder.fmt, encoder.max_length, OverflowPolicy.truncate_question
            )
            try:
                truncation_fits = not _too_long(truncating, [sample for sample, _ in found])
            except ValueError:  # e.g. a slow tokenizer cannot truncate by characters
                truncation_fits = False
        context = local_context(str(settings.get("model")))
        errors = [error for _, error in found]
        raise InputError(
            overflow_message(failing, errors, scorer_model, total, context, truncation_fits)
        )
    finally:
        quiet.setLevel(level)


def _too_long(
    encoder: Any, samples: Sequence[ProcessBenchSample]
) -> list[tuple[ProcessBenchSample, InputTooLong]]:
    """Every sample that ``encoder`` cannot make fit, with its overflow, in order."""
    found = []
    for sample in samples:
        try:
            encoder.encode_one(sample.prefix)
        except InputTooLong as error:
            found.append((sample, error))
    return found


def overflow_message(
    subsets: Sequence[str],
    errors: Sequence[InputTooLong],
    scorer_model: str | None,
    total: int | None = None,
    context: int | None = None,
    truncation_fits: bool | None = None,
) -> str:
    """One line for the samples of ``subsets`` that do not fit the PRM's ``max_length``
    (``errors``: all of them when known before the load, else the first one met; ``total``:
    the size of those subsets). The fix makes them all fit where the numbers allow: the longest
    sample's length as ``scorer.max_length`` when the model's ``context`` holds it,
    ``scorer.on_overflow=truncate_question`` only when ``truncation_fits`` (unknown:
    offered unless it was tried), and the arithmetic world's own subsets for the embedded
    PRM on another world's data. With questions dropped, the ``max_length`` offered keeps
    every question when the context allows it."""
    longest = max(errors, key=lambda e: e.num_tokens)
    dropped = " once its question is dropped" if longest.question_dropped else ""
    count = f"{len(errors)} of {total} samples longer, " if total is not None else ""
    named = f"subset {subsets[0]}" if len(subsets) == 1 else f"subsets {', '.join(subsets)}"
    got = (
        f"{named}: expected every sample to fit the PRM's max_length="
        f"{longest.max_length} tokens{dropped}, got {count}"
        f"{'the longest ' if total is not None else ''}{longest.num_tokens} tokens for "
        f"sample {longest.problem_id!r}"
    )
    if is_arith_model(scorer_model) and not all(map(is_arith_dataset, subsets)):
        fix = (
            f"the embedded arithmetic PRM ({scorer_model}) is for the arithmetic world: score "
            f"it on {ARITH_SUBSET_FIX}, or score this subset with a PRM made for it "
            "(scorer=qwen25_math_prm_7b, GPU)"
        )
        return f"{got}; fix: {fix}"
    fixes = []
    whole = max(e.full_tokens for e in errors)  # every sample with its question
    if context is not None and longest.question_dropped and whole <= context:
        fixes.append(f"scorer.max_length={whole} (the model's context is {context})")
    elif context is not None and longest.num_tokens <= context:
        kept = " (the longest questions dropped)" if longest.question_dropped else ""
        fixes.append(
            f"scorer.max_length={longest.num_tokens}{kept} (the model's context is {context})"
        )
    if truncation_fits or (truncation_fits is None and not longest.question_dropped):
        fixes.append("scorer.on_overflow=truncate_question")
    if context is None:
        fixes.append(
            "a PRM with a longer context (scorer.max_length up to the model's context, or "
            "another scorer)"
        )
    elif longest.num_tokens > context:
        fixes.append(f"a PRM with a context above {context} tokens (another scorer)")
    fixes.append("subsets whose solutions fit")
    listed = ", ".join(fixes[:-1]) + ", or " if len(fixes) > 1 else ""
    return f"{got}; fix: {listed}{fixes[-1]}"


def register_configs() -> None:
    ConfigStore.instance().store(name="processbench_schema", node=ProcessBenchConfig)


register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="processbench")
def main(raw: DictConfig) -> None:
    with exit_on_server_error(), exit_on_input_error():
        config: ProcessBenchConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
        quiet_library_bars(config.progress)
        if raw.scorer is None:
            raise InputError(
                "expected a scorer, got scorer=null; fix: scorer=qwen25_math_prm_7b, "
                "scorer=arith_prm, or a _target_ node of your own PRM"
            )
        output_dir = Path(config.output_dir or HydraConfig.get().runtime.output_dir)
        check_writable_dir(output_dir, "output_dir")
        subsets = load_subsets(config)  # every file read and checked before the PRM loads
        settings = OmegaConf.to_container(raw.scorer, resolve=True)
        assert isinstance(settings, dict)
        node = {str(key): value for key, value in settings.items()}
        check_component("scorer", node)
        scorer_model = component_name(raw.scorer)
        for name, _ in subsets:  # the embedded arithmetic PRM scores about 0 elsewhere
            warn_if_world_mismatch(name, None, scorer_model, ARITH_SUBSET_FIX)
        check_fit(subsets, node, scorer_model)
        scorer = build_component("scorer", raw.scorer)
        report = run_processbench(config, scorer, output_dir, subsets, scorer_model)
    print(markdown_table([SubsetResult(**row) for row in report["subsets"]]))
    print(f"report: {output_dir / 'processbench.json'}")


if __name__ == "__main__":
    main()
