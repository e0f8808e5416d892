"""The run's one progress bar: it moves per finished problem and shows, while a batch of
problems is being searched, how far the search is (generate and score calls of the batch, one
pair per search depth), the policy's tokens per second, and the running accuracy."""

from __future__ import annotations

import time
from typing import Any


class Progress:
    """A tqdm bar over ``total`` problems, ``done`` of them (``correct`` right) finished
    before this invocation; ``enabled=False`` keeps the counts and draws nothing."""

    def __init__(self, total: int, done: int = 0, correct: int = 0, enabled: bool = True) -> None:
        self.finished = done
        self.correct = correct
        self.generate_calls = 0  # in the current batch
        self.score_calls = 0
        self.generated_tokens = 0  # this invocation
        self.start = time.perf_counter()
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            # smoothing=0: the rate is the run's average. Problems finish a batch at a time,
            # so tqdm's moving average (the time between the last updates) would read a
            # whole batch's time as one problem's and overstate the ETA many times over
            self.bar = tqdm(
                total=total, initial=done, desc="problems", dynamic_ncols=True, smoothing=0
            )

    def tokens_per_s(self) -> float:
        return self.generated_tokens / max(time.perf_counter() - self.start, 1e-9)

    def on_generate(self, generated_tokens: int) -> None:
        self.generate_calls += 1
        self.generated_tokens += generated_tokens
        self._show()

    def on_score(self) -> None:
        self.score_calls += 1
        self._show()

    def on_batch(self) -> None:
        self.generate_calls = self.score_calls = 0

    def on_problem(self, correct: bool) -> None:
        self.finished += 1
        self.correct += int(correct)
        if self.bar is not None:
            self.bar.update(1)
        self._show()

    def postfix(self) -> str:
        accuracy = f"{self.correct / self.finished:.3f}" if self.finished else "-"
        return (
            f"accuracy={accuracy}, batch calls gen={self.generate_calls} "
            f"score={self.score_calls}, "
            f"{self.tokens_per_s():.0f} tok/s"
        )

    def _show(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix(), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def quiet_library_bars(progress: bool) -> None:
    """With ``progress=false``, also transformers' own bars (weights loading, shards
    writing) stay off, so a command's output is its results and its log lines."""
    if progress:
        return
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
