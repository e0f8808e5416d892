"""The fake policy and PRM: seeded, faithful to the arithmetic world, honest counters."""

from __future__ import annotations

import pytest

from search.envs.arith.checker import ErrorKind, check_solution
from search.envs.arith.fakes import FakeGenerator, FakeScorer, count_words
from search.envs.arith.world import make_split
from search.guards import call_scorer
from search.protocols import Generator, ReportsUsage, Scorer
from search.types import GREEDY, FinishReason, Prefix, Problem, Sampling, Until

PROBLEMS = make_split("test", size=6)
GENERIC = Problem(id="generic-0", question="What is the meaning of life?", answer="42")


def _full(generator: FakeGenerator, problem: Problem, n: int) -> list[tuple[str, ...]]:
    [generation] = generator.generate([Prefix(problem)], n, Until.end)
    return [c.steps for c in generation.continuations]


def test_fakes_satisfy_the_protocols() -> None:
    assert isinstance(FakeGenerator(), Generator)
    assert isinstance(FakeScorer(), Scorer)
    assert isinstance(FakeScorer(), ReportsUsage)


def test_generator_is_deterministic_from_its_seed() -> None:
    a = [_full(FakeGenerator(seed=3, error_rate=0.5), p, 4) for p in PROBLEMS]
    b = [_full(FakeGenerator(seed=3, error_rate=0.5), p, 4) for p in PROBLEMS]
    c = [_full(FakeGenerator(seed=4, error_rate=0.5), p, 4) for p in PROBLEMS]
    assert a == b
    assert a != c


def test_error_free_generator_writes_the_gold_solution() -> None:
    generator = FakeGenerator(error_rate=0.0)
    for problem in PROBLEMS:
        [generation] = generator.generate([Prefix(problem)], 2, Until.end)
        for continuation in generation.continuations:
            assert continuation.steps == problem.gold_steps
            assert continuation.finish_reason is FinishReason.eos
            assert "\n\n".join(problem.gold_steps) == continuation.text


def test_errors_are_real_errors_and_carry_into_the_answer() -> None:
    generator = FakeGenerator(seed=1, error_rate=0.5)
    kinds = []
    for problem in PROBLEMS:
        for steps in _full(generator, problem, 8):
            check = check_solution(problem, steps)
            if not check.process_correct:
                kinds.append((check.kind, check.answer_correct))
    assert {kind for kind, _ in kinds} == {ErrorKind.arithmetic, ErrorKind.logic}
    # The answer restates the running value, so an error carries into it; only rarely do
    # two errors cancel (a right answer from a wrong process, as with real policies).
    wrong_answers = sum(not answer_correct for _, answer_correct in kinds)
    assert wrong_answers >= 0.8 * len(kinds)
    always_wrong = FakeGenerator(error_rate=1.0)
    for problem in PROBLEMS:
        [first] = always_wrong.generate([Prefix(problem)], 1, Until.step)[0].continuations
        assert check_solution(problem, first.steps).first_error == 0


def test_until_step_writes_one_step_and_ends_at_the_answer() -> None:
    generator = FakeGenerator(error_rate=0.0)
    problem = PROBLEMS[0]
    prefix = Prefix(problem)
    for index in range(len(problem.gold_steps)):
        [continuation] = generator.generate([prefix], 1, Until.step)[0].continuations
        assert continuation.steps == (problem.gold_steps[index],)
        last = index == len(problem.gold_steps) - 1
        assert continuation.finish_reason is (FinishReason.eos if last else FinishReason.step)
        assert continuation.text.endswith("\n\n") is not last
        prefix = prefix.extend(continuation.steps)


def test_continues_from_a_given_prefix() -> None:
    problem = PROBLEMS[1]
    half = problem.gold_steps[:2]
    [generation] = FakeGenerator(error_rate=0.0).generate([Prefix(problem, half)], 1, Until.end)
    assert half + generation.continuations[0].steps == problem.gold_steps


def test_token_limit_cuts_with_finish_reason_length() -> None:
    generator = FakeGenerator(error_rate=0.0, max_new_tokens=7)
    [continuation] = generator.generate([Prefix(PROBLEMS[0])], 1, Until.end)[0].continuations
    assert continuation.finish_reason is FinishReason.length
    assert not continuation.finished
    assert continuation.num_tokens == 7 == count_words(continuation.text)
    # A step that fits is not cut.
    [step] = generator.generate([Prefix(PROBLEMS[0])], 1, Until.step)[0].continuations
    assert step.finish_reason is FinishReason.step


def test_generator_counts_calls_and_tokens() -> None:
    generator = FakeGenerator(seed=2, error_rate=0.3)
    prefixes = [Prefix(p) for p in PROBLEMS[:3]]
    first = generator.generate(prefixes, 3, Until.step)
    assert generator.usage.calls == 1
    assert generator.usage.tokens == sum(g.prompt_tokens for g in first)
    assert generator.usage.new_tokens == generator.usage.tokens  # nothing seen before
    generated = sum(c.num_tokens for g in first for c in g.continuations)
    assert generator.usage.generated_tokens == generated
    assert all(c.num_tokens == count_words(c.text) for g in first for c in g.continuations)
    # The same prompts again: counted as tokens, but none of them is new.
    again = generator.generate(prefixes, 1, Until.step)
    assert generator.usage.calls == 2
    assert generator.usage.tokens == 2 * sum(g.prompt_tokens for g in again)
    assert generator.usage.new_tokens == sum(g.prompt_tokens for g in again)


def test_generic_problems_get_filler_steps_and_an_answer() -> None:
    right = _full(FakeGenerator(error_rate=0.0, generic_steps=2), GENERIC, 1)[0]
    assert right == (
        "Step 1: we work on the problem.",
        "Step 2: we work on the problem.",
        "The answer is \\boxed{42}.",
    )
    wrong = _full(FakeGenerator(error_rate=1.0, generic_steps=2), GENERIC, 3)
    assert all("\\boxed{42}" not in steps[-1] for steps in wrong)


def test_scorer_follows_the_checker() -> None:
    scorer = FakeScorer(right_score=0.9, wrong_score=0.1)
    problem = PROBLEMS[0]
    gold = problem.gold_steps
    broken = (gold[0], "1 + 1 = 3", *gold[2:])
    out = call_scorer(scorer, [Prefix(problem, gold), Prefix(problem, broken), Prefix(problem)])
    assert out.scores[0] == [0.9] * len(gold)
    assert out.scores[1] == [0.9] + [0.1] * (len(gold) - 1)
    assert out.scores[2] == []
    generic = scorer.score([Prefix(GENERIC, ("Step 1.", "The answer is \\boxed{41}."))])
    assert generic == [[0.9, 0.1]]


def test_scorer_noise_is_seeded_bounded_and_repeatable() -> None:
    problem = PROBLEMS[2]
    prefixes = [Prefix(problem, problem.gold_steps)]
    a = FakeScorer(seed=0, noise=0.2).score(prefixes)[0]
    b = FakeScorer(seed=0, noise=0.2).score(prefixes)[0]
    c = FakeScorer(seed=1, noise=0.2).score(prefixes)[0]
    assert a == b != c
    assert all(0.7 <= value <= 1.0 for value in a)
    # Scores of a step do not depend on what follows it.
    shorter = FakeScorer(seed=0, noise=0.2).score([Prefix(problem, problem.gold_steps[:2])])[0]
    assert shorter == a[:2]


def test_scorer_counts_new_tokens_per_solution_prefix() -> None:
    scorer = FakeScorer()
    problem = PROBLEMS[0]
    steps = problem.gold_steps
    question = count_words(problem.question)
    first = scorer.score_with_usage([Prefix(problem, steps[:1])])
    assert first.tokens == first.new_tokens == [question + count_words(steps[0]) + 1]
    second = scorer.score_with_usage([Prefix(problem, steps[:2]), Prefix(problem, steps[:2])])
    assert second.tokens is not None and second.new_tokens is not None
    assert second.new_tokens == [count_words(steps[1]) + 1, 0]
    assert scorer.usage.calls == 2
    assert scorer.usage.tokens == sum(first.tokens) + sum(second.tokens)
    assert scorer.usage.new_tokens == sum(first.new_tokens) + sum(second.new_tokens)


@pytest.mark.parametrize("kwargs", [{"error_rate": 1.5}, {"max_new_tokens": 0}])
def test_generator_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="expected"):
        FakeGenerator(**kwargs)  # type: ignore[arg-type]


def test_generator_draws_from_each_prefixs_own_stream() -> None:
    """A prefix's continuations depend on (seed, its stream, index) alone, not on the other
    prefixes of the call; temperature 0 makes no errors, max_tokens cuts."""
    generator = FakeGenerator(seed=5, error_rate=0.5)
    prefixes = [Prefix(p) for p in PROBLEMS]
    names = tuple(f"s{index}" for index in range(len(prefixes)))
    together = generator.generate(prefixes, 3, Until.end, Sampling(streams=names))
    for index in reversed(range(len(prefixes))):
        alone = generator.generate(
            [prefixes[index]], 3, Until.end, Sampling(streams=(names[index],))
        )
        assert alone[0] == together[index]
    greedy = generator.generate(prefixes, 2, Until.end, GREEDY)
    assert all(
        c.steps == p.problem.gold_steps
        for p, g in zip(prefixes, greedy, strict=True)
        for c in g.continuations
    )
    cut = generator.generate(prefixes, 1, Until.end, Sampling(max_tokens=2))
    assert all(c.finish_reason is FinishReason.length for g in cut for c in g.continuations)
