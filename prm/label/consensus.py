"""Consensus filtering (arXiv 2501.07301, section 3): keep a solution only when Monte Carlo
estimation and a judge agree on where its first error is (or agree there is none).

The kept solution carries MC's labels (hard and soft): where the two agree, the hard labels
up to the first error are the same. The paper keeps about 40% of its data this way; the
retention here is reported by ``python -m prm.label labeller=consensus``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from prm.label.mc import MCConfig
from prm.label.records import Labeller, LabelRecord, unlabelled
from prm.sample import SampledSolution


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
    earlier MC run, keyed by (problem id, sample index)."""

    def __init__(
        self,
        mc: Labeller | dict[tuple[str, int], LabelRecord],
        judge: Labeller,
        name: str = "consensus",
    ) -> None:
        self.mc = mc
        self.judge = judge
        self.name = name
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
        missing = [s.key for s in solutions if s.key not in self.mc]
        if missing:
            raise ValueError(
                f"expected MC records for every solution, got none for {len(missing)} "
                f"(first: {missing[0]}); fix: run labeller=mc on the same samples first or "
                "set labeller.mc_records=null"
            )
        return [self.mc[s.key] for s in solutions]

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
