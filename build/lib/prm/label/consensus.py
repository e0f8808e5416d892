"""Consensus filtering (arXiv 2501.07301, section 3): keep a solution only when Monte Carlo
estimation and a judge agree on where its first error is (or agree there is none).

The kept solution carries MC's labels (hard and soft): where the two agree, the hard labels
up to the first error are the same. The paper keeps about 40% of its data this way; the
retention here is reported by ``python -m prm.label labeller=consensus``.

Records of an earlier MC run (``mc_records``) are checked before use: each must come from an
MC labeller and label the very steps of the solution it is keyed to (``steps_sha``; records
of older runs, which keep no digest, are checked by their number of steps only, with a
warning). A solution without an MC record is refused, not skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from prm.label.mc import MCConfig
from prm.label.records import Labeller, LabelRecord, check_same_steps, unlabelled
from prm.sample import SampledSolution
from search.inputs import InputError
from search.jsonl import read_jsonl_numbered

log = logging.getLogger(__name__)
MC_RECORDS_FIX = (
    "fix: run `python -m prm.label labeller=mc samples=SAME_FILE` first, or point "
    "labeller.mc_records at the MC records of these samples"
)


class JudgeKind(str, Enum):
    calculator = "calculator"  # the arithmetic world's calculator judge (no model)
    llm = "llm"  # an LLM judge built from ``critic``


@dataclass
class ConsensusConfig:
    """``conf/labeller/consensus.yaml``.

    ``mc_records``: the ``records.jsonl`` of an earlier ``labeller=mc`` run over the same
    samples, reused instead of rolling out again (``None``: roll out now with ``mc``).
    """

    name: str = "consensus"
    judge: JudgeKind = JudgeKind.calculator
    mc: MCConfig = field(default_factory=MCConfig)
    critic: dict[str, Any] = field(default_factory=dict)
    mc_records: str | None = None


def mc_names(config: ConsensusConfig) -> set[str]:
    """The labeller names MC records may carry: MCLabeller's default and ``config.mc``'s."""
    return {MCConfig().name, config.mc.name}


def read_mc_records(path: Path, names: Collection[str]) -> dict[tuple[str, int], LabelRecord]:
    """The records of an earlier MC run, keyed by solution; every one must be by a labeller
    in ``names`` (a judge's records would make consensus of the judge with itself)."""
    numbered = read_jsonl_numbered(path)
    if not numbered:
        raise InputError(f"{path}: expected MC records, got none; {MC_RECORDS_FIX}")
    records: dict[tuple[str, int], LabelRecord] = {}
    for number, row in numbered:
        try:
            record = LabelRecord.from_record(row)
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(
                f"{path}:{number}: expected a label record, got {error!r}; {MC_RECORDS_FIX}"
            ) from error
        if record.labeller not in names:
            raise InputError(
                f"{path}:{number}: expected records of an MC labeller (labeller "
                f"{' or '.join(map(repr, sorted(names)))}) for {record.key}, got labeller "
                f"{record.labeller!r}; {MC_RECORDS_FIX} (a renamed MC run: set "
                "labeller.mc.name to its name)"
            )
        records[record.key] = record
    return records


def check_mc_record(
    record: LabelRecord | None, solution: SampledSolution, where: str
) -> LabelRecord:
    """``record``, if it labels ``solution``'s steps; else an ``InputError`` naming ``where``."""
    if record is None:
        raise InputError(
            f"{where}: expected MC records of every solution to label, got none for "
            f"{solution.key}; {MC_RECORDS_FIX}"
        )
    if record.steps_sha is not None:
        check_same_steps([record], [solution], where, MC_RECORDS_FIX)
    elif record.labelled and len(record.labels) != len(solution.steps):
        raise InputError(
            f"{where}: expected {len(solution.steps)} labels for {solution.key} (its steps in "
            f"the samples), got {len(record.labels)} (MC records of another samples file); "
            f"{MC_RECORDS_FIX}"
        )
    return record


def check_mc_records(
    records: dict[tuple[str, int], LabelRecord],
    solutions: Sequence[SampledSolution],
    where: str,
) -> None:
    """Every solution has a record of its own steps (``check_mc_record``); warns when some
    records, from runs before ``steps_sha`` was kept, could be checked by step count only."""
    for solution in solutions:
        check_mc_record(records.get(solution.key), solution, where)
    old = sum(records[s.key].steps_sha is None for s in solutions)
    if old:
        log.warning(
            "%s: %d of %d MC records keep no steps_sha (written by an older version): only "
            "their number of steps was compared with the samples; relabel with labeller=mc "
            "to check the steps themselves",
            where,
            old,
            len(solutions),
        )


def agree(mc: LabelRecord, judge: LabelRecord) -> bool:
    """Both labelled the solution and name the same first error (or both none)."""
    return mc.labelled and judge.labelled and mc.first_error == judge.first_error


def combine(
    mc: LabelRecord, judge: LabelRecord, solution: SampledSolution, name: str = "consensus"
) -> LabelRecord:
    """MC's labels when the two agree; no label (reason says why) when they do not."""
    if mc.key != judge.key or mc.key != solution.key:
        raise ValueError(
            f"expected records of the same solution, got {mc.key}, {judge.key} and "
            f"{solution.key}; fix: label the same samples file with both labellers"
        )
    components = {mc.labeller: mc.first_error, judge.labeller: judge.first_error}
    if not mc.labelled or not judge.labelled:
        missing = mc.labeller if not mc.labelled else judge.labeller
        return unlabelled(solution, name, f"no {missing} label", components)
    if not agree(mc, judge):
        return unlabelled(solution, name, "disagree", components)
    return LabelRecord(
        problem_id=mc.problem_id,
        sample_index=mc.sample_index,
        labeller=name,
        first_error=mc.first_error,
        labels=mc.labels,
        soft_labels=mc.soft_labels,
        components=components,
    )


class ConsensusLabeller:
    """Implements ``prm.label.records.Labeller``. ``mc`` is a labeller or the records of an
    earlier MC run, keyed by (problem id, sample index), read from ``mc_source`` (named in
    errors); each is checked against its solution (``check_mc_record``)."""

    def __init__(
        self,
        mc: Labeller | dict[tuple[str, int], LabelRecord],
        judge: Labeller,
        name: str = "consensus",
        mc_source: str = "MC records",
    ) -> None:
        self.mc = mc
        self.judge = judge
        self.name = name
        self.mc_source = mc_source
        self.kept = 0
        self.seen = 0

    def usage(self) -> dict[str, Any]:
        mc_usage = {} if isinstance(self.mc, dict) else self.mc.usage()
        return {
            "mc": mc_usage,
            "judge": self.judge.usage(),
            "kept": self.kept,
        }

    def _mc_records(self, solutions: Sequence[SampledSolution]) -> list[LabelRecord]:
        if not isinstance(self.mc, dict):
            return self.mc.label(solutions)
        return [check_mc_record(self.mc.get(s.key), s, self.mc_source) for s in solutions]

    def label(self, solutions: Sequence[SampledSolution]) -> list[LabelRecord]:
        mc_records = self._mc_records(solutions)
        judge_records = self.judge.label(solutions)
        out = [
            combine(mc, judge, solution, self.name)
            for solution, mc, judge in zip(solutions, mc_records, judge_records, strict=True)
        ]
        self.seen += len(out)
        self.kept += sum(record.labelled for record in out)
        return out
