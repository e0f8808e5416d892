"""benchmarks/round_rule.py: the rule that picks a training round, on hand-made result files."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import round_rule  # noqa: E402


def processbench(f1s: dict[str, float]) -> dict[str, Any]:
    return {
        "prms": [
            {
                "name": name,
                "subsets": [
                    {"subset": "arith-validation-corrupt", "f1": 0.1},
                    {"subset": round_rule.POLICY_SUBSET, "f1": f1},
                ],
            }
            for name, f1 in f1s.items()
        ]
    }


def paired(old: list[float], new: list[float], seeds: int = 2) -> list[dict[str, Any]]:
    rows = [
        {
            "strategy": s,
            "n": n,
            "aggregation": "min",
            "old": o,
            "new": w,
            "problems": 200,
            "seeds": seeds,
        }
        for (s, n), o, w in zip(round_rule.FOUR_ROWS, old, new, strict=True)
    ]
    # rows the rule must not read: another N, another aggregation, a row without a PRM
    rows.append({"strategy": "beam", "n": 8, "aggregation": "min", "old": 0.0, "new": 1.0})
    rows.append({"strategy": "dvts", "n": 16, "aggregation": "last", "old": 0.0, "new": 1.0})
    rows.append(
        {"strategy": "best_of_n/majority", "n": 16, "aggregation": "-", "old": 0.3, "new": 0.3}
    )
    return rows


def choose(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    f1s: dict[str, float],
    news: dict[str, list[float]],
    olds: dict[str, list[float]] | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    bench = tmp_path / "pb.json"
    bench.write_text(json.dumps(processbench(f1s)))
    argv = ["round_rule.py", "--processbench", str(bench), "--shipped", "shipped"]
    for name, new in news.items():
        directory = tmp_path / name
        directory.mkdir()
        old = (olds or {}).get(name, [0.5, 0.5, 0.6, 0.6])
        (directory / "accuracy_vs_compute_validation_paired.json").write_text(
            json.dumps(paired(old, new))
        )
        argv += ["--candidate", f"{name}={directory}"]
    out = tmp_path / "choice.md"
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(out), *extra])
    round_rule.main()
    return out.read_text()


def test_the_higher_mean_of_the_passing_rounds_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = choose(
        tmp_path,
        monkeypatch,
        {"shipped": 0.85, "r2": 0.86, "r3": 0.87},
        {"r2": [0.5, 0.6, 0.6, 0.6], "r3": [0.5, 0.5, 0.7, 0.7]},
    )
    assert "| r2 | 86.0 | 0.5750 | yes |" in text
    assert "| r3 | 87.0 | 0.6000 | yes |" in text
    assert "| shipped | 85.0 | 0.5500 | (shipped) |" in text
    assert text.rstrip().endswith("Choice: r3.")


def test_a_lower_step_f1_or_mean_fails_and_a_tie_goes_to_fewer_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = [0.1, 0.2, 0.3, 0.7]
    # the same four numbers summed in another order: means apart by float rounding only
    low, high = [0.1, 0.7, 0.3, 0.2], [0.1, 0.2, 0.3, 0.7]
    assert sum(low) / 4 < sum(high) / 4 == sum(shipped) / 4  # the rounding is real
    text = choose(
        tmp_path,
        monkeypatch,
        {"shipped": 0.85, "r2": 0.84, "r3": 0.90, "r4": 0.90, "r5": 0.90},
        {
            "r2": [0.9, 0.9, 0.9, 0.9],  # better search, lower step F1
            "r3": [0.1, 0.1, 0.1, 0.1],  # better step F1, lower search
            "r4": low,  # level with the shipped PRM but for rounding: passes
            "r5": high,  # above r4 by rounding only: a tie, which goes to r4
        },
        olds=dict.fromkeys(("r2", "r3", "r4", "r5"), shipped),
    )
    assert "| r2 | 84.0 | 0.9000 | no |" in text
    assert "| r3 | 90.0 | 0.1000 | no |" in text
    assert "| r4 | 90.0 | 0.3250 | yes |" in text and "| r5 | 90.0 | 0.3250 | yes |" in text
    assert "200 problems × 2 seeds" in text
    assert text.rstrip().endswith("Choice: r4.")


def test_tolerances_make_a_parity_check_and_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f1s = {"shipped": 0.85, "close": 0.83, "far": 0.82}
    # four-row means: the shipped PRM 0.55; close 0.54 (0.01 lower); far 0.55 (but F1 3 lower)
    news = {"close": [0.49, 0.49, 0.59, 0.59], "far": [0.5, 0.5, 0.6, 0.6]}
    strict = choose(tmp_path / "strict", monkeypatch, f1s, news)
    assert "| close | 83.0 | 0.5400 | no |" in strict and "parity" not in strict
    loose = choose(
        tmp_path / "loose",
        monkeypatch,
        f1s,
        news,
        extra=("--f1-tolerance", "2.5", "--mean-tolerance", "0.015"),
    )
    assert "| close | 83.0 | 0.5400 | yes |" in loose and "| far | 82.0 | 0.5500 | no |" in loose
    assert "at most 2.5 points below" in loose and "at most 0.015 below" in loose
    assert "| shipped | 85.0 | 0.5500 | (reference) |" in loose and "(shipped)" not in loose
    assert loose.rstrip().endswith("Parity: close passes.") and "Choice" not in loose
    # --parity is the same check, by name
    named = choose(tmp_path / "named", monkeypatch, f1s, news, extra=("--parity",))
    assert named == loose
    with pytest.raises(SystemExit):
        choose(tmp_path / "bad", monkeypatch, f1s, news, extra=("--f1-tolerance", "-1"))
    with pytest.raises(SystemExit):  # both: which values hold would be unclear
        choose(tmp_path / "both", monkeypatch, f1s, news, extra=("--parity", "--f1-tolerance", "0"))


def test_a_round_level_with_the_shipped_prm_on_both_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = choose(
        tmp_path, monkeypatch, {"shipped": 0.85, "r2": 0.85}, {"r2": [0.5, 0.5, 0.6, 0.6]}
    )
    assert "| r2 | 85.0 | 0.5500 | yes |" in text
    assert text.rstrip().endswith("Choice: r2.")


def test_candidates_paired_with_different_shipped_tables_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit, match="same table of the shipped PRM"):
        choose(
            tmp_path,
            monkeypatch,
            {"shipped": 0.85, "r2": 0.9, "r3": 0.9},
            {"r2": [0.9, 0.9, 0.9, 0.9], "r3": [0.9, 0.9, 0.9, 0.9]},
            olds={"r3": [0.1, 0.1, 0.1, 0.1]},
        )


def test_a_candidate_missing_from_the_step_f1_table_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit, match="expected a PRM named 'r3'"):
        choose(tmp_path, monkeypatch, {"shipped": 0.85}, {"r3": [0.9, 0.9, 0.9, 0.9]})


def test_no_passing_round_keeps_the_shipped_prm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = choose(
        tmp_path, monkeypatch, {"shipped": 0.85, "r2": 0.80}, {"r2": [0.9, 0.9, 0.9, 0.9]}
    )
    assert text.rstrip().endswith("Choice: shipped (no candidate passes).")


def test_a_missing_row_or_rows_of_other_sizes_are_errors_that_name_the_fix() -> None:
    with pytest.raises(SystemExit, match="rerun the script that wrote"):
        round_rule.four_rows([{"strategy": "beam", "n": 16, "aggregation": "min"}])
    rows = paired([0.5] * 4, [0.6] * 4)
    rows[3]["seeds"] = 1  # DVTS run on one seed only
    with pytest.raises(SystemExit, match="same problems and seeds"):
        round_rule.four_rows(rows)


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        (["round2"], r"expected --candidate NAME=DIR, got 'round2'"),
        (["shipped=d"], r"distinct from each other and from --shipped 'shipped'"),
        (["a=d", "a=e"], r"got \['a', 'a'\]"),
    ],
)
def test_candidates_are_name_dir_pairs_named_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    candidates: list[str],
    message: str,
) -> None:
    bench = tmp_path / "pb.json"
    bench.write_text(json.dumps(processbench({"shipped": 0.9})))
    argv = ["round_rule.py", "--processbench", str(bench), "--shipped", "shipped"]
    for spec in candidates:
        argv += ["--candidate", spec]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        round_rule.main()
    assert re.search(message, capsys.readouterr().err)


def test_a_missing_step_f1_table_names_the_script_that_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["round_rule.py", "--processbench", str(tmp_path / "none.json"), "--shipped", "s"]
    monkeypatch.setattr(sys, "argv", [*argv, "--candidate", f"a={tmp_path}"])
    with pytest.raises(SystemExit):
        round_rule.main()
    assert "more_rounds.sh" in capsys.readouterr().err
