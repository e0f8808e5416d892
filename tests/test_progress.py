"""The progress bar moves per finished problem and per search depth, with tokens/s."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.aggregation import Aggregation
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.envs.arith.world import make_split
from search.progress import Progress
from search.run import run_search
from search.strategies import build_strategy
from search.strategies.config import StrategyConfig, StrategyName


def test_bar_moves_per_problem_and_per_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = build_strategy(
        StrategyConfig(name=StrategyName.beam, n=4, beam_width=2), Aggregation.min
    )
    run_search(
        make_split("test", size=3),
        FakeGenerator(seed=0),
        FakeScorer(seed=0),
        strategy,
        tmp_path,
        describe={},
        batch_problems=8,  # one batch: the count moves only when it ends
        progress=True,
    )
    err = capsys.readouterr().err
    for shown in ("1/3", "2/3", "3/3"):  # per problem, not per batch
        assert shown in err
    # during the batch, before any problem is done: depth after depth
    assert "0/3 [" in err and "batch calls gen=1 score=0" in err and "gen=2 score=2" in err
    assert "tok/s" in err


def test_counts_without_a_bar() -> None:
    progress = Progress(total=4, done=1, correct=1, enabled=False)
    progress.on_generate(100)
    progress.on_score()
    progress.on_problem(False)
    assert (progress.finished, progress.correct, progress.generated_tokens) == (2, 1, 100)
    assert progress.postfix().startswith("accuracy=0.500, batch calls gen=1 score=1")
    progress.on_batch()
    assert "gen=0 score=0" in progress.postfix()


def test_progress_false_turns_off_transformers_bars() -> None:
    from transformers.utils import logging as transformers_logging

    from search.progress import quiet_library_bars

    transformers_logging.enable_progress_bar()  # whatever an earlier test left
    try:
        quiet_library_bars(True)
        assert transformers_logging.is_progress_bar_enabled()
        quiet_library_bars(False)
        assert not transformers_logging.is_progress_bar_enabled()
    finally:
        transformers_logging.enable_progress_bar()
