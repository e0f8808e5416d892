from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from prm.label.mc import MCConfig, MCLabeller
from prm.label.records import LabelRecord, to_stepwise
from prm.sample import SampledSolution
from search.types import (
    DEFAULT_SAMPLING,
    Continuation,
    FinishReason,
    Generation,
    Prefix,
    Problem,
    Sampling,
    Until,
    split_steps,
)

PROBLEM = Problem(id="p0", question="Compute 4 + 3 - 2.", answer="5")
RIGHT = ("4 + 3 = 7", "7 - 2 = 5", "The answer is \\boxed{5}.")
SLIP = ("4 + 3 = 8", "8 - 2 = 6", "The answer is \\boxed{6}.")


def solution(steps: tuple[str, ...], index: int = 0, finished: bool = True) -> SampledSolution:
    return SampledSolution(PROBLEM, index, steps, finished, num_tokens=30, policy="toy")


class ScriptedRollouts:
    """From a prefix with steps s, ``right[s]`` of the n completions reach the gold answer
    and end (eos); of the rest, one reaches it but runs out of tokens (``length``: must
    count as wrong) and the others state a wrong answer."""

    def __init__(self, right: dict[tuple[str, ...], int]) -> None:
        self.right = right
        self.calls: list[tuple[list[Prefix], int, Until]] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.calls.append((list(prefixes), n, until))
        out = []
        for prefix in prefixes:
            m = self.right[prefix.steps]
            continuations = []
            for index in range(n):
                if index < m:
                    answer, reason = prefix.problem.answer, FinishReason.eos
                elif index == m:
                    answer, reason = prefix.problem.answer, FinishReason.length
                else:
                    answer, reason = "999", FinishReason.eos
                text = f"The answer is \\boxed{{{answer}}}."
                continuations.append(Continuation(text, split_steps(text), reason, 3))
            out.append(Generation(prompt_tokens=10, continuations=tuple(continuations)))
        return out


def test_fractions_are_exact_and_the_finished_last_step_is_graded_directly() -> None:
    generator = ScriptedRollouts({RIGHT[:1]: 8, RIGHT[:2]: 3})
    labeller = MCLabeller(generator, MCConfig(num_rollouts=8))
    (record,) = labeller.label([solution(RIGHT)])
    assert record.soft_labels == (1.0, 3 / 8, 1.0)
    assert record.labels == (True, True, True) and record.first_error == -1
    # the last step of a finished solution is not rolled out
    ((prefixes, n, until),) = generator.calls
    assert [p.steps for p in prefixes] == [RIGHT[:1], RIGHT[:2]]
    assert n == 8 and until is Until.end
    usage = labeller.usage()
    assert usage["rollouts"] == 16 and usage["rollout_tokens"] == 16 * 3
    assert usage["prompt_tokens"] == 20 and usage["generate_calls"] == 1


def test_threshold_and_first_error() -> None:
    generator = ScriptedRollouts({SLIP[:1]: 1, SLIP[:2]: 0, RIGHT[:1]: 8, RIGHT[:2]: 3})
    strict = MCLabeller(generator, MCConfig(num_rollouts=8, threshold=0.5))
    slip, right = strict.label([solution(SLIP), solution(RIGHT, 1)])
    assert slip.soft_labels == (1 / 8, 0.0, 0.0)
    assert slip.labels == (False, False, False) and slip.first_error == 0
    assert right.labels == (True, False, True) and right.first_error == 1
    lenient = MCLabeller(generator, MCConfig(num_rollouts=8, threshold=0.0))
    slip, right = lenient.label([solution(SLIP), solution(RIGHT, 1)])
    assert slip.labels == (True, False, False) and slip.first_error == 1
    assert right.first_error == -1


def test_all_prefixes_in_one_call_with_dedupe() -> None:
    generator = ScriptedRollouts({RIGHT[:1]: 2, RIGHT[:2]: 2, SLIP[:1]: 0, SLIP[:2]: 0})
    labeller = MCLabeller(generator, MCConfig(num_rollouts=4))
    records = labeller.label([solution(RIGHT, 0), solution(RIGHT, 1), solution(SLIP, 2)])
    assert len(generator.calls) == 1
    assert len(generator.calls[0][0]) == 4  # RIGHT's two prefixes once, SLIP's two
    assert [r.sample_index for r in records] == [0, 1, 2]
    assert records[0].soft_labels == records[1].soft_labels == (0.5, 0.5, 1.0)
    assert labeller.usage()["prefixes"] == 6 and labeller.usage()["prefixes_rolled_out"] == 4
    no_dedupe = ScriptedRollouts(generator.right)
    MCLabeller(no_dedupe, MCConfig(num_rollouts=4, dedupe_prefixes=False)).label(
        [solution(RIGHT, 0), solution(RIGHT, 1)]
    )
    assert len(no_dedupe.calls[0][0]) == 4


def test_unfinished_solution_rolls_out_its_last_step_and_wrong_answer_scores_zero() -> None:
    generator = ScriptedRollouts({RIGHT[:1]: 4, RIGHT[:2]: 2, SLIP[:1]: 0, SLIP[:2]: 0})
    labeller = MCLabeller(generator, MCConfig(num_rollouts=4))
    cut, slip = labeller.label([solution(RIGHT[:2], finished=False), solution(SLIP, 1)])
    assert cut.soft_labels == (1.0, 0.5)
    assert slip.soft_labels == (0.0, 0.0, 0.0)  # final answer 6 is graded wrong directly


def test_drop_after_first_negative_and_keep() -> None:
    generator = ScriptedRollouts({SLIP[:1]: 2, SLIP[:2]: 0})
    (record,) = MCLabeller(generator, MCConfig(num_rollouts=4)).label([solution(SLIP)])
    assert record.first_error == 1
    dropped = to_stepwise(solution(SLIP), record)
    assert dropped is not None
    assert dropped.completions == SLIP[:2] and dropped.labels == (True, False)
    assert dropped.soft_labels == (0.5, 0.0) and dropped.labeller == "mc"
    assert dropped.policy == "toy" and dropped.problem_id == "p0" and dropped.answer == "5"
    kept = to_stepwise(solution(SLIP), record, keep_after_first_error=True)
    assert kept is not None and kept.completions == SLIP and kept.labels == (True, False, False)


def test_empty_solution_gets_no_label_and_bad_generators_are_reported() -> None:
    generator = ScriptedRollouts({})
    (record,) = MCLabeller(generator, MCConfig(num_rollouts=2)).label([solution(())])
    assert record.first_error is None and record.reason == "empty solution"
    assert to_stepwise(solution(()), record) is None

    class Short(ScriptedRollouts):
        def generate(
            self,
            prefixes: Sequence[Prefix],
            n: int,
            until: Until,
            sampling: Sampling = DEFAULT_SAMPLING,
        ) -> list[Generation]:
            return super().generate(prefixes, n - 1, until, sampling)

    with pytest.raises(ValueError, match="expected 2 continuations"):
        MCLabeller(Short({RIGHT[:1]: 1, RIGHT[:2]: 1}), MCConfig(num_rollouts=2)).label(
            [solution(RIGHT)]
        )


def test_config_checks_and_record_roundtrip() -> None:
    with pytest.raises(ValueError, match="threshold"):
        MCConfig(threshold=1.0)
    with pytest.raises(ValueError, match="num_rollouts"):
        MCConfig(num_rollouts=0)
    record = LabelRecord("p", 1, "mc", 1, (True, False), (0.5, 0.0))
    assert LabelRecord.from_record(record.to_record()) == record
    with pytest.raises(ValueError, match="first false label"):
        LabelRecord("p", 1, "mc", 0, (True, False), (0.5, 0.0))


LATE = ("3 + 4 = 7", "7 - 2 = 4", "The answer is \\boxed{4}.")


class CountingRollouts:
    """The i-th completion ever drawn from a prefix (across calls) is right exactly when
    ``i >= first_right[steps]`` (``None``: never right), so early stopping is observable."""

    def __init__(self, first_right: dict[tuple[str, ...], int | None]) -> None:
        self.first_right = first_right
        self.drawn: dict[tuple[str, ...], int] = {}
        self.calls: list[list[tuple[str, ...]]] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.calls.append([p.steps for p in prefixes])
        out = []
        for prefix in prefixes:
            start = self.drawn.get(prefix.steps, 0)
            self.drawn[prefix.steps] = start + n
            first = self.first_right[prefix.steps]
            continuations = []
            for index in range(start, start + n):
                right = first is not None and index >= first
                text = f"The answer is \\boxed{{{prefix.problem.answer if right else 999}}}."
                continuations.append(Continuation(text, split_steps(text), FinishReason.eos, 3))
            out.append(Generation(prompt_tokens=10, continuations=tuple(continuations)))
        return out


def test_early_stop_gives_the_full_modes_hard_labels_for_fewer_rollouts() -> None:
    first_right = {
        SLIP[:1]: None,
        SLIP[:2]: None,
        LATE[:1]: 3,
        LATE[:2]: None,
        RIGHT[:1]: 0,
        RIGHT[:2]: 0,
    }
    solutions = [solution(RIGHT), solution(SLIP, 1), solution(LATE, 2)]
    full = MCLabeller(CountingRollouts(first_right), MCConfig(num_rollouts=8))
    generator = CountingRollouts(first_right)
    early = MCLabeller(generator, MCConfig(num_rollouts=8, early_stop=True, rollouts_per_round=2))
    full_records, early_records = full.label(solutions), early.label(solutions)
    assert [r.labels for r in early_records] == [r.labels for r in full_records]
    assert [r.first_error for r in early_records] == [-1, 0, 1]
    assert [r.soft_labels for r in early_records] == [
        (1.0, 1.0, 1.0),
        (0.0, 0.0, 0.0),
        (1.0, 0.0, 0.0),
    ]
    # the right finished solution needs no rollout; SLIP's first prefix is dropped after 8
    # wrong ones; LATE's first prefix stops at its 4th rollout (round 2), its second after 8
    assert generator.calls == [
        [SLIP[:1], LATE[:1]],
        [SLIP[:1], LATE[:1]],
        [SLIP[:1], LATE[:2]],
        [SLIP[:1], LATE[:2]],
        [LATE[:2]],
        [LATE[:2]],
    ]
    assert early.usage()["rollouts"] == 8 + 4 + 8
    assert full.usage()["rollouts"] == 8 * 6  # every non-final prefix, 8 completions each
    assert early.usage()["prefixes"] == 3 and early.usage()["generate_calls"] == 6


RAWP = ("4 + 3 = 8", "7 - 2 = 5", "The answer is \\boxed{5}.")  # right answer, wrong step 0


@pytest.mark.parametrize("trust", [True, False])
def test_trusting_right_answers_passes_a_compensated_slip(trust: bool) -> None:
    first_right = {RAWP[:1]: None, RAWP[:2]: 0, RIGHT[:1]: 0, RIGHT[:2]: 0}
    solutions = [solution(RIGHT), solution(RAWP, 1)]
    generator = CountingRollouts(first_right)
    config = MCConfig(num_rollouts=4, early_stop=True, rollouts_per_round=2)
    labeller = MCLabeller(generator, replace(config, trust_right_answers=trust))
    records = labeller.label(solutions)
    full = MCLabeller(CountingRollouts(first_right), MCConfig(num_rollouts=4)).label(solutions)
    if trust:  # no rollout at all: both answers are right, so every step is right
        assert [r.first_error for r in records] == [-1, -1] and generator.calls == []
    else:  # RAWP's slipped first step reaches the answer in none of its rollouts
        assert [r.first_error for r in records] == [r.first_error for r in full] == [-1, 0]
        assert records[1].labels == (False, False, False)  # wrong from the first error on
        assert generator.calls == [[RIGHT[:1], RAWP[:1]], [RIGHT[:2], RAWP[:1]]]
        assert labeller.usage()["rollouts"] == 2 + 2 + 4


def test_early_stop_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold 0 with early_stop"):
        MCConfig(early_stop=True, threshold=0.5)
    with pytest.raises(ValueError, match="dividing num_rollouts"):
        MCConfig(num_rollouts=8, rollouts_per_round=3)


@pytest.mark.parametrize("dedupe", [True, False])
def test_early_stop_rolls_out_a_prefix_that_solutions_share_once(dedupe: bool) -> None:
    """Two samples of one problem with the same steps: with de-duplication their shared
    prefix is asked for once per round (its stream is named by the prefix, so its rollouts
    would be the same twice); without it, each sample's own."""
    first_right = {SLIP[:1]: None, SLIP[:2]: None, LATE[:1]: 3, LATE[:2]: None}
    solutions = [solution(SLIP), solution(LATE, 1), solution(SLIP, 2)]
    generator = CountingRollouts(first_right)
    config = MCConfig(num_rollouts=8, early_stop=True, rollouts_per_round=2)
    labeller = MCLabeller(generator, replace(config, dedupe_prefixes=dedupe))
    records = labeller.label(solutions)
    assert [r.first_error for r in records] == [0, 1, 0]
    assert records[0].labels == records[2].labels == (False, False, False)
    again = [] if dedupe else [SLIP[:1]]  # the second sample's own request
    assert generator.calls == [
        [SLIP[:1], LATE[:1], *again],
        [SLIP[:1], LATE[:1], *again],
        [SLIP[:1], LATE[:2], *again],
        [SLIP[:1], LATE[:2], *again],
        [LATE[:2]],
        [LATE[:2]],
    ]
    usage = labeller.usage()
    assert usage["rollouts"] == 8 + 4 + 8 + (0 if dedupe else 8)
    assert usage["prefixes"] == 4  # every sample's prefixes, rolled out or shared


def test_requests_with_the_same_prefix_and_stream_are_generated_once() -> None:
    class Recording(CountingRollouts):
        def generate(
            self,
            prefixes: Sequence[Prefix],
            n: int,
            until: Until,
            sampling: Sampling = DEFAULT_SAMPLING,
        ) -> list[Generation]:
            self.streams = sampling.streams
            return super().generate(prefixes, n, until, sampling)

    generator = Recording({SLIP[:1]: None, SLIP[:2]: 0})
    labeller = MCLabeller(generator, MCConfig(num_rollouts=2))
    prefixes = [Prefix(PROBLEM, SLIP[:1]), Prefix(PROBLEM, SLIP[:2]), Prefix(PROBLEM, SLIP[:1])]
    # the third repeats the first; a same-named stream of another prefix is its own request
    fractions = labeller._rollout(prefixes, ("a", "a", "a"))
    assert fractions == [0.0, 1.0, 0.0]
    assert generator.calls == [[SLIP[:1], SLIP[:2]]] and generator.streams == ("a", "a")
    assert labeller._rollout(prefixes, ("a", "b", "c")) == [0.0, 1.0, 0.0]
    assert generator.calls[1] == [SLIP[:1], SLIP[:2], SLIP[:1]]
    assert labeller.usage()["rollouts"] == 2 * 2 + 3 * 2


@pytest.mark.parametrize("early_stop", [False, True])
@pytest.mark.parametrize("dedupe", [True, False])
def test_streams_are_named_by_the_prefix_or_by_the_solution(dedupe: bool, early_stop: bool) -> None:
    """The stream names every label depends on: by the prefix with de-duplication (so samples
    sharing a prefix share its rollouts), by solution and step without; early-stop rounds add
    the rollouts the prefix has had."""
    streams: list[tuple[str, ...]] = []

    class Recording(CountingRollouts):
        def generate(
            self,
            prefixes: Sequence[Prefix],
            n: int,
            until: Until,
            sampling: Sampling = DEFAULT_SAMPLING,
        ) -> list[Generation]:
            streams.append(sampling.streams or ())
            return super().generate(prefixes, n, until, sampling)

    config = MCConfig(
        num_rollouts=2, dedupe_prefixes=dedupe, early_stop=early_stop, rollouts_per_round=2
    )
    MCLabeller(Recording({SLIP[:1]: None, SLIP[:2]: None}), config).label([solution(SLIP, 3)])
    by_prefix = f"mc\x1fp0\x1f{PROBLEM.question}\x1f4 + 3 = 8"
    if early_stop:  # the first prefix, wrong after its 2 rollouts: one round
        expected = [(f"{by_prefix}\x1f0",)] if dedupe else [("mc/p0/3/1/0",)]
    else:
        expected = (
            [(by_prefix, f"{by_prefix}\x1f8 - 2 = 6")] if dedupe else [("mc/p0/3/1", "mc/p0/3/2")]
        )
    assert streams == expected


@pytest.mark.parametrize(
    ("dedupe", "early_stop"), [(True, False), (False, False), (True, True), (False, True)]
)
def test_soft_labels_do_not_depend_on_chunking(dedupe: bool, early_stop: bool) -> None:
    """Rollouts draw from streams named by the prefix (or by solution and step without
    de-duplication), so labelling in chunks of 1 or all at once gives the same labels; with
    de-duplication, all at once rolls out the prefixes samples share once."""
    from search.envs.arith.fakes import FakeGenerator
    from search.envs.arith.world import make_split

    problems = make_split("train", size=3)
    sampler = FakeGenerator(seed=1, error_rate=0.5)
    solutions = [
        SampledSolution(problem, index, c.steps, c.finished, c.num_tokens)
        for problem, generation in zip(
            problems, sampler.generate([Prefix(p) for p in problems], 4, Until.end), strict=True
        )
        for index, c in enumerate(generation.continuations)
    ]
    config = MCConfig(
        num_rollouts=4, dedupe_prefixes=dedupe, early_stop=early_stop, rollouts_per_round=2
    )
    at_once = MCLabeller(FakeGenerator(seed=3, error_rate=0.5), config)
    whole = at_once.label(solutions)
    single = MCLabeller(FakeGenerator(seed=3, error_rate=0.5), config)
    one_by_one = [single.label([s])[0] for s in reversed(solutions)][::-1]
    assert one_by_one == whole
    spent, alone = at_once.usage()["rollouts"], single.usage()["rollouts"]
    assert spent < alone if dedupe else spent == alone
    values = {value for record in whole for value in record.soft_labels}
    assert len(values) > (1 if early_stop else 2)  # fractions unless early stop (0/1)
