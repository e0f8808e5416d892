"""benchmarks/render_readme.py: README's results block is what the result files render to."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import render_readme  # noqa: E402


def test_readmes_results_block_is_rendered_from_the_result_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No table in README's results is typed by hand or left behind its result file."""
    assert render_readme.ROOT == ROOT  # this checkout's README, not the one `search` comes from
    monkeypatch.setattr(sys, "argv", ["render_readme.py", "--check"])
    render_readme.main()
    assert "matches" in capsys.readouterr().out


def test_check_refuses_a_hand_edited_table_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text()
    edited = readme.replace("| dvts@16 | checker |", "| dvts@16 | checker (typed) |", 1)
    assert edited != readme
    (tmp_path / "README.md").write_text(edited)
    monkeypatch.setattr(render_readme, "ROOT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["render_readme.py", "--check"])
    with pytest.raises(SystemExit, match=r"results block to match .*fix: python benchmarks"):
        render_readme.main()
    assert (tmp_path / "README.md").read_text() == edited
