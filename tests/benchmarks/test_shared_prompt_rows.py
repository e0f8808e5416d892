"""benchmarks/shared_prompt_rows.py: both variants run the same rows, the shared one reading
its prompts once at any size, and the table says which one the generator's rule picks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import shared_prompt_rows  # noqa: E402

from search.generators.hf import SHARE_FROM_ROWS  # noqa: E402


def test_a_row_times_the_same_call_with_prompts_copied_and_shared(
    tiny_policy_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiny_models import count_shared_chunks

    built = count_shared_chunks(monkeypatch)  # rows of each chunk that shared its prompts
    call = "question + 2 steps, one step"
    row = shared_prompt_rows.measure(str(tiny_policy_dir), call, 4, 2, repeats=2)
    # below the default's threshold, the shared variant still shares (once per run), the
    # copied one never
    assert SHARE_FROM_ROWS > 4 and built == [4, 4]
    assert row["rows"] == 4 and row["per_prompt"] == 2 and row["same_tokens"]
    assert row["copied_generated_tokens"] == row["shared_generated_tokens"] > 0
    assert row["prompt_tokens"] > 0
    big = {**row, "rows": SHARE_FROM_ROWS}
    text = shared_prompt_rows.report([row, big], repeats=2)
    assert f"| {call} | {row['prompt_tokens']:.0f} | 2 | 4 |" in text
    assert text.splitlines()[-2].endswith("| copies |") and text.endswith("| shares |")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rows", "12", "--per-prompt", "3", "8"], "multiples of every --per-prompt (24)"),
        (["--per-prompt", "1"], "expected --per-prompt values >= 2"),
        (["--repeats", "0"], "expected --repeats >= 1, got 0"),
    ],
)
def test_bad_flags_are_refused_before_any_work(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    out = tmp_path / "results"
    monkeypatch.setattr(sys, "argv", ["shared_prompt_rows.py", *argv, "--results-dir", str(out)])
    with pytest.raises(SystemExit):
        shared_prompt_rows.main()
    assert message in capsys.readouterr().err and not out.exists()
