"""benchmarks/prm_processbench.py --split: validation is the yardstick for choosing a PRM recipe,
so its subsets must hold validation problems only, and the test-only hard subset stays out."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_cli  # noqa: E402
import prm_processbench  # noqa: E402

from prm.processbench import comparison_table, f1_table, markdown_table  # noqa: E402
from search.envs.arith.export import ExportConfig, export_processbench  # noqa: E402
from search.envs.arith.world import Split, make_split  # noqa: E402
from search.types import Prefix  # noqa: E402

POLICY = {"model": "unused"}


def test_test_split_keeps_its_three_subsets() -> None:
    names = [name for name, _ in prm_processbench.subsets(Split.test, 10, POLICY)]
    assert names == ["arith-test-policy", "arith-hard-policy", "arith-test-corrupt"]


def test_validation_subsets_hold_validation_problems_only(tmp_path: Path) -> None:
    chosen = prm_processbench.subsets(Split.validation, 12, POLICY)
    assert [name for name, _ in chosen] == ["arith-validation-policy", "arith-validation-corrupt"]
    assert all(config.split is Split.validation for _, config in chosen)
    corrupt = chosen[-1][1]
    corrupt.output = str(tmp_path / "corrupt.json")
    path, _ = export_processbench(corrupt)
    questions = {record["problem"] for record in json.loads(path.read_text())}
    validation = {p.question for p in make_split(Split.validation, size=12)}
    test = {p.question for p in make_split(Split.test)}
    assert questions and questions <= validation
    assert not questions & test


def test_other_splits_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="--split test"):
        prm_processbench.subsets(Split.hard, 10, POLICY)


class ConstantScorer:
    """Every step scored ``value``: above the threshold finds no error, below flags step 0."""

    def __init__(self, value: float) -> None:
        self.value = value

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return [[self.value] * len(prefix.steps) for prefix in prefixes]


def test_several_prms_share_one_export_and_one_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports: list[str] = []
    real_export = prm_processbench.export_processbench

    def counting_export(config: ExportConfig) -> tuple[Path, dict[str, Any]]:
        exports.append(str(config.output))
        return real_export(config)

    corrupt_only = [prm_processbench.subsets(Split.validation, 20, POLICY)[-1]]
    monkeypatch.setattr(prm_processbench, "subsets", lambda *args: corrupt_only)
    monkeypatch.setattr(prm_processbench, "export_processbench", counting_export)
    monkeypatch.setattr(
        prm_processbench, "build_scorer", lambda model, backend: ConstantScorer(float(model))
    )
    prms = prm_processbench.named_prms(["trusting=0.9", "flags-all=0.1"])
    scored = prm_processbench.evaluate(prms, 20, tmp_path, 0.5, Split.validation)
    assert len(exports) == 1  # the solutions are exported once, scored by both PRMs
    (trusting,), (flags_all,) = (entry["results"] for entry in scored)
    assert trusting.correct_accuracy == 1.0 and trusting.error_accuracy == 0.0
    assert flags_all.correct_accuracy == 0.0
    table = comparison_table([(entry["name"], entry["results"]) for entry in scored])
    lines = table.splitlines()
    assert lines[0].startswith("| PRM | subset |")
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| trusting"] * 2 + ["| flags-all"] * 2
    assert markdown_table([trusting]).splitlines()[2:] == [
        line.removeprefix("| trusting ") for line in lines[2:4]
    ]
    compact = f1_table([(entry["name"], entry["results"]) for entry in scored]).splitlines()
    assert compact[0] == "| PRM | arith-validation-corrupt F1 | mean F1 |"
    assert compact[2:] == ["| trusting | 0.0 | 0.0 |", "| flags-all | 0.0 | 0.0 |"]
    with pytest.raises(ValueError, match="score them together"):
        f1_table([("a", [trusting]), ("b", [])])
    # the report records each PRM's weights digest beside its path, one PRM or several
    digests = {"0.9": "aaaa", "0.1": "bbbb"}
    arguments = {"split": "validation", "threshold": 0.5}
    report, text = prm_processbench.report_of(scored, arguments, digests)
    assert [(e["prm"], e["prm_sha256"]) for e in report["prms"]] == [
        ("0.9", "aaaa"),
        ("0.1", "bbbb"),
    ]
    report, text = prm_processbench.report_of(scored[:1], arguments, digests)
    assert report["prm_sha256"] == "aaaa" and "PRM `0.9` (weights aaaa), validation split" in text


@pytest.mark.parametrize("entries", [["a=x", "a=y"], ["=x"], ["a="]])
def test_prm_entries_need_distinct_names_and_paths(entries: list[str]) -> None:
    with pytest.raises(ValueError, match="NAME=PATH"):
        prm_processbench.named_prms(entries)
    assert prm_processbench.named_prms(["runs/x"]) == [("runs/x", "runs/x")]


def refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """main() with ``argv`` must exit 2 before the policy exports any subset: its message."""
    monkeypatch.setattr(prm_processbench, "RESULTS", Path("unused"))
    return bench_cli.refused(
        monkeypatch, capsys, prm_processbench, list(argv), "export_processbench"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--threshold", "1.5"], "expected 0 <= --threshold <= 1, got 1.5"),
        (["--count", "0"], "expected --count >= 1, got 0"),
        (["--count", "-3"], "expected --count >= 1, got -3"),
    ],
)
def test_bad_flags_are_parser_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert message in refused(monkeypatch, capsys, *argv, "--workdir", str(tmp_path))


def test_missing_prm_is_refused_before_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-prm"
    err = refused(monkeypatch, capsys, "--prm", f"new={missing}", "--workdir", str(tmp_path))
    assert f"expected --prm new={missing} to be a PRM checkpoint, got no such folder" in err


def test_a_prm_folder_needs_config_and_weights(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without config.json and model.safetensors"):
        prm_processbench.check_prm("empty", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"]}))
    with pytest.raises(ValueError, match=r"without model.safetensors or .*pytorch_model.bin"):
        prm_processbench.check_prm("empty", str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="--prm empty=.*family=token_classification"):
        prm_processbench.check_prm("empty", str(tmp_path))  # a policy, not a PRM
    with pytest.raises(ValueError, match="got a file"):
        prm_processbench.check_prm("file", str(tmp_path / "config.json"))
