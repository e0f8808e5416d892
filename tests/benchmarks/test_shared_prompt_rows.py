"""benchmarks/shared_prompt_rows.py: both variants run the same rows, and the table says which
one the generator's rule picks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import shared_prompt_rows  # noqa: E402

from search.generators.hf import SHARE_FROM_ROWS  # noqa: E402


def test_a_row_times_the_same_call_with_prompts_copied_and_shared(tiny_policy_dir: Path) -> None:
    call = "question + 2 steps, one step"
    row = shared_prompt_rows.measure(str(tiny_policy_dir), call, 4, 2, repeats=1)
    assert row["rows"] == 4 and row["per_prompt"] == 2 and row["same_tokens"]
    assert row["copied_generated_tokens"] == row["shared_generated_tokens"] > 0
    assert row["speedup_wall"] == row["copied_wall_s"] / row["shared_wall_s"]
    big = {**row, "rows": SHARE_FROM_ROWS}
    text = shared_prompt_rows.report([row, big], repeats=1)
    assert f"| {call} | {row['prompt_tokens']:.0f} | 2 | 4 |" in text
    assert text.splitlines()[-2].endswith("| copies |") and text.endswith("| shares |")


def test_rows_that_do_not_split_into_prompts_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["shared_prompt_rows.py", "--rows", "12", "--per-prompt", "8"])
    with pytest.raises(SystemExit):
        shared_prompt_rows.main()
    assert "expected --rows that are multiples of every --per-prompt, got 12" in (
        capsys.readouterr().err
    )
