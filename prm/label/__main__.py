"""``python -m prm.label``: label a samples file with one labeller (``conf/prm_label.yaml``).

    python -m prm.label labeller=mc                      # Monte Carlo, policy rollouts
    python -m prm.label labeller=calculator report=true  # calculator judge + quality table
    python -m prm.label labeller=consensus labeller.mc_records=runs/prm/labels/mc/records.jsonl
    python -m prm.label labeller=judge labeller.critic.base_url=http://HOST:8000/v1
    python -m prm.label labeller=judge_local labeller.critic.policy.model=PATH

Writes to ``output_dir`` (default ``runs/prm/labels/<labeller>``):

- ``records.jsonl``: one record per solution, labelled or not (``prm.label.records``); a
  rerun skips the solutions already there, so a killed run resumes;
- ``usage.jsonl``: the cost of each chunk (rollout tokens, critiques);
- ``stepwise.jsonl``: the training set (``prm.stepwise``), rebuilt from the records;
- ``metrics.json``: counts, retention, reasons for missing labels, total cost;
- with ``report=true``: ``quality.json`` and a markdown table of label quality against
  ``checker`` (the task's ground truth; default: the arithmetic world's).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from prm.label.calculator import CalculatorConfig, CalculatorLabeller
from prm.label.consensus import (
    ConsensusConfig,
    ConsensusLabeller,
    JudgeKind,
    check_mc_records,
    mc_names,
    read_mc_records,
)
from prm.label.judge import JudgeConfig, JudgeLabeller
from prm.label.mc import MCConfig, MCLabeller
from prm.label.quality import markdown_table, quality_from_records, write_quality
from prm.label.records import Labeller, LabelRecord, check_same_steps, stamped, to_stepwise
from prm.sample import SampledSolution, read_samples
from prm.stepwise import write_stepwise
from search.components import build_component, check_component
from search.inputs import exit_on_input_error, exit_on_server_error
from search.jsonl import JsonlLog
from search.launchers.ray import RayLauncherConfig
from search.progress import quiet_library_bars
from search.protocols import Checker, Generator
from search.resolve import CONF_DIR
from search.rundir import NOT_RESULTS, RunLock, check_fingerprint, fingerprint, schema_defaults

log = logging.getLogger("prm.label")
RECORDS_FILE = "records.jsonl"
# records do not depend on these: the stepwise file and the report are rebuilt on every run
NOT_LABELS = NOT_RESULTS | {"keep_after_first_error", "checker"}


@dataclass
class LabelConfig:
    """Top level of ``conf/prm_label.yaml``. ``policy`` (the engine's policy group) is the
    model MC rolls out; ``labeller`` is one of ``conf/labeller``; ``checker`` (a ``_target_``
    node building a ``search.protocols.Checker``, or null) is the ground truth that
    ``report=true`` measures label quality against."""

    samples: str = "runs/prm/samples/samples.jsonl"
    output_dir: str = "runs/prm/labels/mc"
    labeller: Any = None
    chunk_solutions: int = 64
    limit: int | None = None
    keep_after_first_error: bool = False
    report: bool = False
    seed: int = 0
    progress: bool = True
    policy: Any = None
    checker: Any = None
    launcher: RayLauncherConfig | None = None  # +launcher=ray: chunks over Ray workers

    def __post_init__(self) -> None:
        if self.chunk_solutions < 1:
            raise ValueError(
                f"expected chunk_solutions >= 1, got {self.chunk_solutions}; fix: "
                "chunk_solutions=1 or more"
            )
        if self.report and self.checker is None:
            raise ValueError(
                "expected a checker (a _target_ node building a search.protocols.Checker) with "
                "report=true, got checker=null; fix: report=false, or checker={_target_: ...}"
            )


def register_configs() -> None:
    store = ConfigStore.instance()
    store.store(name="prm_label_schema", node=LabelConfig)
    for name, node in (
        ("mc_schema", MCConfig),
        ("judge_schema", JudgeConfig),
        ("calculator_schema", CalculatorConfig),
        ("consensus_schema", ConsensusConfig),
    ):
        store.store(group="labeller", name=name, node=node)


def build_critic(node: dict[str, Any]) -> Any:
    if "_target_" not in node:
        raise ValueError(
            f"expected labeller.critic to be a _target_ node building a Critic, got keys "
            f"{sorted(node)}; fix: use labeller=judge (an OpenAI-compatible endpoint) or "
            "labeller=judge_local (a generator), or set labeller.critic._target_"
        )
    return build_component("labeller.critic", node)


def build_labeller(
    config: LabelConfig, mc_records: dict[tuple[str, int], LabelRecord] | None = None
) -> Labeller:
    """The labeller a config names; models are loaded here, only when needed. ``mc_records``:
    consensus's ``labeller.mc_records``, already read (``check_reused_records``); else read
    here."""

    def build_generator() -> Generator:
        generator: Generator = build_component("policy", config.policy, seed=config.seed)
        return generator

    chosen = config.labeller
    match chosen:
        case MCConfig():
            return MCLabeller(build_generator(), chosen)
        case JudgeConfig():
            return JudgeLabeller(build_critic(chosen.critic), name=chosen.name)
        case CalculatorConfig():
            return CalculatorLabeller(name=chosen.name)
        case ConsensusConfig():
            source = chosen.mc_records
            # reused MC records are read (and checked) before the judge is built
            records = mc_records
            if records is None and source:
                records = read_mc_records(Path(source), mc_names(chosen))
            if chosen.judge is JudgeKind.calculator:
                judge: Labeller = CalculatorLabeller()
            else:
                judge = JudgeLabeller(build_critic(chosen.critic))
            mc = MCLabeller(build_generator(), chosen.mc) if records is None else records
            return ConsensusLabeller(mc, judge, chosen.name, source or "MC records")
    raise ValueError(
        f"expected a labeller config from conf/labeller, got {type(chosen).__name__}; "
        "fix: labeller=mc|judge|judge_local|calculator|consensus"
    )


def flat_counts(usage: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a (nested) usage dict, keyed ``outer.inner``."""
    out: dict[str, float] = {}
    for key, value in usage.items():
        if isinstance(value, dict):
            out |= flat_counts(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = value
    return out


def total_usage(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Sum of the per-chunk costs in ``usage.jsonl`` (every run, resumed ones included)."""
    total: Counter[str] = Counter()
    for row in rows:
        total.update(row)
    return dict(total)


class LabelWorker:
    """One shard of labelling on Ray (``search.launchers.ray.map_on_ray``): its own labeller
    (and MC policy) built from the run's config."""

    def __init__(self, config: LabelConfig) -> None:
        self.labeller = build_labeller(config)

    def run(self, chunk: list[SampledSolution]) -> tuple[list[dict[str, Any]], dict[str, float]]:
        """(``records.jsonl`` rows, the usage this chunk spent)."""
        return _label_chunk(self.labeller, chunk)


def _label_chunk(
    labeller: Labeller, chunk: list[SampledSolution]
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    before = flat_counts(labeller.usage())
    records = [stamped(r, s) for r, s in zip(labeller.label(chunk), chunk, strict=True)]
    after = flat_counts(labeller.usage())
    spent = {key: value - before.get(key, 0) for key, value in after.items()}
    return [record.to_record() for record in records], spent


def run_labelling(
    solutions: list[SampledSolution],
    labeller: Labeller | None,
    output_dir: Path,
    chunk_solutions: int,
    keep_after_first_error: bool = False,
    progress: bool = False,
    describe: dict[str, Any] | None = None,
    launcher: RayLauncherConfig | None = None,
    config: LabelConfig | None = None,
) -> tuple[list[LabelRecord], dict[str, Any]]:
    """Label the solutions not yet in ``records.jsonl`` chunk by chunk, then rebuild
    ``stepwise.jsonl`` and ``metrics.json`` (with ``describe`` merged in) from every record
    of these solutions. The directory is locked for the run (``search.rundir.RunLock``).

    With a ``launcher`` the chunks go to Ray workers that each build the labeller of
    ``config`` (``labeller`` is not used); the driver appends their records as they arrive.
    MC rollouts draw from streams named by the prefix (by solution and step without prefix
    de-duplication), so the labels are the same.
    """
    if labeller is None and config is None:
        raise ValueError("expected a labeller (or a launcher and a config), got none")
    if launcher is not None and config is None:
        raise ValueError("expected the run's LabelConfig to build labellers on Ray, got none")
    with RunLock(output_dir):
        return _label_locked(
            solutions,
            labeller,
            output_dir,
            chunk_solutions,
            keep_after_first_error,
            progress,
            describe,
            launcher,
            config,
        )


def _label_locked(
    solutions: list[SampledSolution],
    labeller: Labeller | None,
    output_dir: Path,
    chunk_solutions: int,
    keep_after_first_error: bool,
    progress: bool,
    describe: dict[str, Any] | None,
    launcher: RayLauncherConfig | None,
    config: LabelConfig | None,
) -> tuple[list[LabelRecord], dict[str, Any]]:
    output_dir.mkdir(parents=True, exist_ok=True)
    written = JsonlLog(output_dir / RECORDS_FILE)
    usage_log = JsonlLog(output_dir / "usage.jsonl")
    done = {LabelRecord.from_record(row).key for row in written.records}
    todo = [s for s in solutions if s.key not in done]
    if done:
        log.info("resuming: %d solutions already labelled, %d to go", len(done), len(todo))
    chunks = [todo[i : i + chunk_solutions] for i in range(0, len(todo), chunk_solutions)]
    if labeller is None and launcher is None and chunks:
        raise ValueError(
            f"expected a labeller for the {len(todo)} solutions not yet labelled, got none; "
            "fix: build one with build_labeller(config), or pass a launcher"
        )
    if labeller is not None:
        name = labeller.name
    else:
        assert config is not None
        name = str(config.labeller.name)
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(chunks), desc=f"labelling ({name})", unit="chunk")
    if labeller is not None and launcher is None:
        done_chunks: Any = ((chunk, _label_chunk(labeller, chunk)) for chunk in chunks)
    elif launcher is None:
        done_chunks = iter(())  # a finished run: no chunks, and no labeller was built
    else:
        from search.launchers.ray import map_on_ray

        hint = f"the records so far are in {written.path}; re-run the same command to resume"
        done_chunks = (
            (chunk, result)
            for _, chunk, result in map_on_ray(launcher, LabelWorker, (config,), chunks, hint)
        )
    for chunk, (rows, spent) in done_chunks:
        written.append(rows)
        usage_log.append([spent | {"solutions": len(chunk)}])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    # chunks finish in any order on Ray workers: the file ends as one process writes it
    position = {s.key: index for index, s in enumerate(solutions)}
    written.reorder(lambda row: position.get(LabelRecord.key_of(row), len(position)))

    by_key = {r.key: r for r in map(LabelRecord.from_record, written.records)}
    records = [by_key[s.key] for s in solutions]
    examples = [
        example
        for solution, record in zip(solutions, records, strict=True)
        if (example := to_stepwise(solution, record, keep_after_first_error)) is not None
    ]
    write_stepwise(output_dir / "stepwise.jsonl", examples)
    kept = sum(r.labelled for r in records)
    metrics = {
        "labeller": name,
        "num_solutions": len(solutions),
        "num_labelled": kept,
        "retention": kept / len(solutions) if solutions else None,
        "no_label_reasons": dict(Counter(r.reason for r in records if not r.labelled)),
        "num_examples": len(examples),
        "num_steps": sum(len(e.completions) for e in examples),
        "fully_correct_share": (
            sum(e.first_error == -1 for e in examples) / len(examples) if examples else None
        ),
        "usage": total_usage(usage_log.records),
    } | (describe or {})
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return records, metrics


register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prm_label")
def main(raw: DictConfig) -> None:
    with exit_on_server_error(), exit_on_input_error():
        label_from_config(raw)


def check_reused_records(
    config: LabelConfig, todo: list[SampledSolution]
) -> dict[tuple[str, int], LabelRecord] | None:
    """With ``labeller.mc_records``: the records, once checked to be an MC labeller's, of these
    solutions' steps, one for each solution to label (``prm.label.consensus``), before any
    model loads; ``None`` without them (or with nothing to label)."""
    chosen = config.labeller
    if not (isinstance(chosen, ConsensusConfig) and chosen.mc_records and todo):
        return None
    records = read_mc_records(Path(chosen.mc_records), mc_names(chosen))
    check_mc_records(records, todo, chosen.mc_records)
    return records


def uses_policy(config: LabelConfig) -> bool:
    """Whether the labeller rolls out the policy (MC, or consensus without MC records)."""
    chosen = config.labeller
    if isinstance(chosen, MCConfig):
        return True
    return isinstance(chosen, ConsensusConfig) and not chosen.mc_records


def uses_critic(config: LabelConfig) -> bool:
    """Whether the labeller asks a critic (the LLM judge, alone or in consensus)."""
    chosen = config.labeller
    if isinstance(chosen, JudgeConfig):
        return True
    return isinstance(chosen, ConsensusConfig) and chosen.judge is not JudgeKind.calculator


def label_from_config(raw: DictConfig) -> None:
    """The body of ``python -m prm.label``: checks before any model loads, then labels."""
    config: LabelConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
    quiet_library_bars(config.progress)
    solutions = read_samples(Path(config.samples))
    if config.limit is not None:
        solutions = solutions[: config.limit]
    output_dir = Path(config.output_dir)
    settings: Any = OmegaConf.to_container(raw, resolve=True, enum_to_str=True)
    if uses_policy(config):  # its settings checked before anything loads
        check_component("policy", settings.get("policy"), seed=config.seed)
    if uses_critic(config):  # likewise the critic's (an unknown key is one line, not a trace)
        check_component("labeller.critic", settings["labeller"].get("critic"))
    with RunLock(output_dir):  # one writer; settings checked before any model loads
        written = JsonlLog(output_dir / RECORDS_FILE).records
        check_fingerprint(
            output_dir,
            fingerprint(settings, NOT_LABELS),
            has_records=bool(written),
            defaults=schema_defaults(raw),
            ignore=NOT_LABELS,
        )
        labelled = [LabelRecord.from_record(row) for row in written]
        check_same_steps(  # a samples file rewritten at the same path since the run began
            labelled,
            solutions,
            str(output_dir / RECORDS_FILE),
            "fix: the samples file this run started with, or a new output_dir",
        )
        done = {record.key for record in labelled}
        todo = [s for s in solutions if s.key not in done]
        finished = not todo  # nothing to label: no model loads
        reused = check_reused_records(config, todo)
        # +launcher=ray: each worker builds its own labeller (and policy)
        labeller = None if config.launcher or finished else build_labeller(config, reused)
        records, metrics = run_labelling(
            solutions,
            labeller,
            output_dir,
            chunk_solutions=config.chunk_solutions,
            keep_after_first_error=config.keep_after_first_error,
            progress=config.progress,
            describe={"config": settings},
            launcher=config.launcher,
            config=config,
        )
    print(json.dumps({k: v for k, v in metrics.items() if k != "config"}, indent=2))
    if config.report:
        checker: Checker = instantiate(raw.checker)
        try:
            rows = quality_from_records(solutions, records, checker)
        except ValueError as error:
            raise ValueError(
                f"{error}; fix: report=true needs a checker of these samples' task "
                f"(checker={type(checker).__name__}), or report=false"
            ) from error
        write_quality(output_dir / "quality.json", rows)
        print(markdown_table(rows))
    print(f"stepwise dataset: {output_dir / 'stepwise.jsonl'}")


if __name__ == "__main__":
    main()
