"""``python -m prm.processbench``: metrics on hand-built scores, batching, file checks, the
real ProcessBench GSM8K file, and the CLI end to end on an exported arithmetic file."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from prm.first_error import harmonic_mean, predicted_first_error
from prm.processbench import (
    ProcessBenchConfig,
    ProcessBenchSample,
    evaluate_subset,
    load_subset,
    mean_f1,
    overflow_message,
    resolve_subset,
    subset_metrics,
)
from prm.scoring.encoding import InputTooLong
from search.envs.arith.export import ExportConfig, export_processbench
from search.inputs import InputError
from search.resolve import CONF_DIR
from search.types import Prefix

PROCESSBENCH = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "processbench"
SCORERS = sorted(p.stem for p in (CONF_DIR / "scorer").glob("*.yaml"))


class LabelScorer:
    """Knows the answer: 0.9 before a sample's label step, 0.1 from it on (``score`` only,
    no usage), and records the size of every call."""

    def __init__(self, labels: dict[str, int]) -> None:
        self.labels = labels
        self.calls: list[int] = []

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        self.calls.append(len(prefixes))
        out = []
        for prefix in prefixes:
            label = self.labels[prefix.problem.id]
            out.append([0.1 if 0 <= label <= i else 0.9 for i in range(len(prefix.steps))])
        return out


class ConstantScorer:
    def __init__(self, value: float = 0.9) -> None:
        self.value = value

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return [[self.value] * len(prefix.steps) for prefix in prefixes]


def make_samples() -> list[ProcessBenchSample]:
    labels = [-1, 0, 2, -1, 1, -1, 3, -1]
    finals = [True, False, True, True, False, True, True, True]  # 2 and 6: right answer,
    return [  # wrong process
        ProcessBenchSample(
            f"s{i}", f"problem {i}", tuple(f"step {j}" for j in range(4)), label, final
        )
        for i, (label, final) in enumerate(zip(labels, finals, strict=True))
    ]


def test_predicted_first_error() -> None:
    assert predicted_first_error([0.9, 0.7, 0.4, 0.1], 0.5) == 2
    assert predicted_first_error([0.9, 0.7], 0.5) == -1
    assert predicted_first_error([0.5], 0.5) == -1  # below, not at, the threshold
    assert predicted_first_error([0.3, 0.9], 0.2) == -1


def test_perfect_scorer_has_f1_one_and_batches() -> None:
    samples = make_samples()
    scorer = LabelScorer({s.id: s.label for s in samples})
    result, records = evaluate_subset("hand", samples, scorer, threshold=0.5, batch_size=3)
    assert scorer.calls == [3, 3, 2]
    assert (result.num_erroneous, result.num_correct) == (4, 4)
    assert result.error_accuracy == result.correct_accuracy == result.f1 == 1.0
    assert result.num_rawp == 2 and result.rawp_flagged == 1.0 and result.rawp_exact == 1.0
    assert [r["prediction"] for r in records] == [s.label for s in samples]


def test_always_positive_scorer_has_f1_zero() -> None:
    result, _ = evaluate_subset("hand", make_samples(), ConstantScorer(0.9))
    assert result.error_accuracy == 0.0 and result.correct_accuracy == 1.0
    assert result.f1 == 0.0
    assert result.rawp_flagged == 0.0
    assert result.min_on_final_step_share == 0.0  # flat scores: the minimum is not strictly last


def test_metrics_on_hand_built_predictions() -> None:
    samples = make_samples()  # labels -1 0 2 -1 1 -1 3 -1
    predictions = [-1, 0, 1, 2, 1, -1, -1, -1]
    scores = [[0.9, 0.8, 0.7, 0.1]] * len(samples)
    result = subset_metrics("hand", samples, predictions, scores)
    assert result.error_accuracy == pytest.approx(2 / 4)  # s1, s4 right; s2 early, s6 missed
    assert result.correct_accuracy == pytest.approx(3 / 4)  # s3 flagged wrongly
    assert result.f1 == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    assert result.rawp_flagged == pytest.approx(1 / 2) and result.rawp_exact == 0.0
    assert result.min_on_final_step_share == 1.0
    assert harmonic_mean(None, 1.0) is None and harmonic_mean(0.0, 0.0) == 0.0
    assert mean_f1([result, result]) == pytest.approx(result.f1)


def test_bad_files_are_named(tmp_path: Path) -> None:
    good = {"problem": "p", "steps": ["a", "b"], "label": -1}
    for row, message in [
        ({**good, "label": 2}, r"label' in \[-1, 1\]"),
        ({**good, "steps": "a"}, "non-empty list of strings"),
        ({**good, "problem": ""}, "non-empty string 'problem'"),
    ]:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps([good, row]))
        with pytest.raises(ValueError, match=rf"bad.json\[1\]: expected .*{message}"):
            load_subset(path)
    with pytest.raises(InputError, match="fix: set data_dir"):
        load_subset(tmp_path / "missing.json")
    assert resolve_subset("gsm8k", tmp_path) == ("gsm8k", tmp_path / "gsm8k.json")
    assert resolve_subset("x/arith.json", tmp_path) == ("arith", Path("x/arith.json"))


def test_config_checks() -> None:
    for kwargs, message in [
        ({"threshold": 1.5}, "threshold"),
        ({"batch_size": 0}, "batch_size"),
        ({"limit": 0}, "limit"),
        ({"subsets": []}, "at least one subset"),
    ]:
        with pytest.raises(ValueError, match=message):
            ProcessBenchConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(not (PROCESSBENCH / "gsm8k.json").is_file(), reason="no ProcessBench data")
def test_real_gsm8k_subset_with_a_trivial_scorer() -> None:
    samples = load_subset(PROCESSBENCH / "gsm8k.json", limit=20, seed=0)
    assert len(samples) == 20
    labels = {s.label for s in samples}
    assert -1 in labels and labels - {-1}  # the seeded draw mixes both kinds (the file
    assert [s.id for s in samples] == sorted(  # lists errors first), in file order
        (s.id for s in samples), key=lambda i: int(i.rsplit("-", 1)[1])
    )
    assert samples == load_subset(PROCESSBENCH / "gsm8k.json", limit=20, seed=0)
    result, records = evaluate_subset("gsm8k", samples, ConstantScorer(0.9), batch_size=8)
    assert result.num_samples == 20 and result.error_accuracy == 0.0 and result.f1 == 0.0
    assert all(len(r["step_scores"]) == len(s.steps) for r, s in zip(records, samples, strict=True))
    result, _ = evaluate_subset("gsm8k", samples, ConstantScorer(0.1), batch_size=8)
    assert result.correct_accuracy == 0.0  # everything flagged at step 0
    expected = sum(s.label == 0 for s in samples) / result.num_erroneous
    assert result.error_accuracy == pytest.approx(expected)


@pytest.mark.parametrize("scorer", SCORERS)
def test_every_scorer_option_composes(scorer: str) -> None:
    import prm.processbench  # noqa: F401  (registers the schema)

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        raw = compose("processbench", overrides=[f"scorer={scorer}"])
    config = OmegaConf.to_object(raw)
    assert isinstance(config, ProcessBenchConfig)
    assert config.subsets == ["gsm8k", "math", "olympiadbench", "omnimath"]
    assert config.data_dir.endswith("/processbench")
    assert (raw.scorer is None) == (scorer == "none")


def test_cli_end_to_end_on_an_arith_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import prm.processbench as entry

    exported, summary = export_processbench(
        ExportConfig(count=40, output=str(tmp_path / "arith.json"))
    )
    assert summary["right_answer_wrong_process"] > 0
    out = tmp_path / "out"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "prm.processbench",
            "~scorer",
            "scorer={_target_:search.envs.arith.fakes.FakeScorer}",
            f"subsets=[{exported}]",
            f"output_dir={out}",
            "batch_size=16",
            "progress=false",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
    )
    entry.main()
    report = json.loads((out / "processbench.json").read_text())
    (arith,) = report["subsets"]
    # FakeScorer knows the checker: perfect on the true labels, rawp included.
    assert arith["subset"] == "arith" and arith["num_samples"] == 40
    assert arith["f1"] == 1.0 and report["mean_f1"] == 1.0 and arith["rawp_flagged"] == 1.0
    assert arith["num_rawp"] == summary["right_answer_wrong_process"]
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 40
    assert "| arith | 40 | 100.0 | 100.0 | 100.0 | 100.0 |" in capsys.readouterr().out


def test_a_limit_draws_both_kinds_however_the_file_is_ordered(tmp_path: Path) -> None:
    """ProcessBench lists erroneous samples first and the arithmetic export draws with seed
    0: a limited draw is stratified by label, with a seed of its own per file."""
    wrong = [{"problem": f"w{i}", "steps": ["a", "b"], "label": 1} for i in range(30)]
    right = [{"problem": f"r{i}", "steps": ["a", "b"], "label": -1} for i in range(10)]
    path = tmp_path / "ordered.json"
    path.write_text(json.dumps(wrong + right))
    for limit in (2, 4, 8):
        drawn = load_subset(path, limit=limit, seed=0)
        labels = [s.label for s in drawn]
        assert len(drawn) == limit and -1 in labels and 1 in labels
        assert [s.problem for s in drawn] == sorted(
            (s.problem for s in drawn), key=lambda p: (p[0] == "r", int(p[1:]))
        )  # file order kept
    assert sum(s.label == -1 for s in load_subset(path, limit=8, seed=0)) == 2  # 1 in 4
    assert load_subset(path, limit=8, seed=0) != load_subset(path, limit=8, seed=1)


def _run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str) -> None:
    import prm.processbench as entry

    argv = ["prm.processbench", f"output_dir={tmp_path / 'out'}", "progress=false"]
    argv += [*overrides, f"hydra.run.dir={tmp_path / 'hydra'}"]
    monkeypatch.setattr(sys, "argv", argv)
    entry.main()


def test_the_embedded_prm_on_long_solutions_is_one_line_naming_the_arithmetic_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The embedded PRM has 256 positions: a ProcessBench-like solution longer than that is
    an error line (not a traceback) that says what the PRM is for, after a warning."""
    steps = [f"Step {i}: we add {i} and {i} to get {2 * i}, then carry on." for i in range(40)]
    path = tmp_path / "gsm8k.json"
    path.write_text(json.dumps([{"problem": "Long one.", "steps": steps, "label": -1}]))
    with pytest.raises(SystemExit) as raised:
        _run_cli(tmp_path, monkeypatch, "scorer=arith_prm", f"subsets=[{path}]")
    message = str(raised.value.code)
    assert "\n" not in message
    assert message.startswith(
        "error: subset gsm8k: expected every sample to fit the PRM's max_length=256 tokens "
        "once its question is dropped, got "
    )
    assert "for sample 'gsm8k-0'; fix: the embedded arithmetic PRM" in message
    assert "is for the arithmetic world" in message and "search.envs.arith.export" in message
    log = (tmp_path / "hydra" / "processbench.log").read_text()  # kept: it logged a warning
    warning = "trained on the arithmetic world only; on dataset gsm8k"
    assert warning in log
    printed = capfd.readouterr()
    assert warning in printed.out + printed.err  # and on the console


def test_a_max_length_beyond_the_models_context_is_refused_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported, _ = export_processbench(ExportConfig(count=4, output=str(tmp_path / "a.json")))
    with pytest.raises(SystemExit) as raised:
        _run_cli(
            tmp_path,
            monkeypatch,
            "scorer=arith_prm",
            "scorer.max_length=4096",
            f"subsets=[{exported}]",
        )
    assert str(raised.value.code).startswith(
        "error: expected scorer.max_length <= the model's context (max_position_embeddings=256)"
    )
    assert not (tmp_path / "out" / "processbench.json").exists()


def test_the_pre_load_check_counts_every_sample_that_does_not_fit() -> None:
    """On the embedded PRM's tokenizer (no weights are read): the count, the longest, and
    truncation offered only when dropping the questions makes every sample fit."""
    from prm.processbench import ProcessBenchSample, check_fit

    question = "Compute " + " + ".join(["1"] * 20) + "."
    samples = [
        ProcessBenchSample("short", "Compute 1 + 1.", ("1 + 1 = 2",), -1),
        ProcessBenchSample("long-q", question, ("1 + 1 = 2",), -1),
        ProcessBenchSample("longer-q", question + " Then add 1.", ("1 + 1 = 2",), -1),
    ]
    scorer = {
        "_target_": "prm.scoring.build_scorer",
        "model": "checkpoints/arith-prm",
        "step_tag": "<step>",
        "max_length": 60,
        "on_overflow": "error",
    }
    with pytest.raises(InputError) as raised:
        check_fit([("mine", samples)], scorer, "my/prm")
    message = str(raised.value)
    assert "got 2 of 3 samples longer, the longest" in message
    assert "'longer-q'" in message and "scorer.on_overflow=truncate_question" in message
    assert "(the model's context is 256)" in message
    wordy = [ProcessBenchSample("wordy", "Compute 1 + 1.", ("1 + 1 = 2 " * 8,), -1)]
    with pytest.raises(InputError) as raised:
        check_fit([("mine", wordy)], scorer, "my/prm")
    assert "truncate_question" not in str(raised.value)
    check_fit([("mine", samples[:1])], scorer, "my/prm")  # every sample fits: no error
    # several subsets: one message for all of them, whose fix fits them all
    with pytest.raises(InputError) as raised:
        check_fit([("a", samples[:2]), ("ok", samples[:1]), ("b", wordy)], scorer, "my/prm")
    message = str(raised.value)
    assert message.startswith("subsets a, b: expected every sample")
    assert "got 2 of 3 samples longer, the longest 117 tokens for sample 'long-q'" in message
    # truncation would fit a's long question, not b's wordy steps: not offered
    assert "scorer.max_length=117" in message and "truncate_question" not in message


def test_overflow_fix_depends_on_the_prm_and_the_numbers() -> None:
    def too_long(sample: str, tokens: int, dropped: bool = False) -> InputTooLong:
        return InputTooLong(
            "x", problem_id=sample, num_tokens=tokens, max_length=4096, question_dropped=dropped
        )

    # met while scoring (one sample, the context unknown)
    message = overflow_message(["math"], [too_long("math-3", 5000)], "Qwen/Qwen2.5-Math-PRM-7B")
    assert message == (
        "subset math: expected every sample to fit the PRM's max_length=4096 tokens, got 5000 "
        "tokens for sample 'math-3'; fix: scorer.on_overflow=truncate_question, a PRM with a "
        "longer context (scorer.max_length up to the model's context, or another scorer), or "
        "subsets whose solutions fit"
    )
    # found before the load: all of them counted, the longest named, fixes that fit it
    errors = [too_long("math-3", 5000), too_long("math-9", 6000)]
    message = overflow_message(["math"], errors, "my/prm", 500, 8192, truncation_fits=False)
    assert message == (
        "subset math: expected every sample to fit the PRM's max_length=4096 tokens, got 2 of "
        "500 samples longer, the longest 6000 tokens for sample 'math-9'; fix: "
        "scorer.max_length=6000 (the model's context is 8192), or subsets whose solutions fit"
    )
    message = overflow_message(["math"], errors, "my/prm", 500, 4096, truncation_fits=True)
    assert "fix: scorer.on_overflow=truncate_question, a PRM with a context above 4096" in message
    dropped = [too_long("math-3", 4500, dropped=True)]
    assert "truncate_question" not in overflow_message(["math"], dropped, "my/prm")
    # questions dropped: the max_length offered keeps them when the context holds them all
    whole = InputTooLong(
        "x", problem_id="m", num_tokens=4500, max_length=4096, question_dropped=True,
        full_tokens=5200,
    )  # fmt: skip
    assert "scorer.max_length=5200 (the model's" in overflow_message(["m"], [whole], "p", 1, 8192)
    assert (
        "scorer.max_length=4500 (the longest questions dropped) (the model's context is 5000)"
        in (overflow_message(["m"], [whole], "p", 1, 5000))
    )
    # the embedded PRM: the world's own subsets, unless it is already on one
    assert "arithmetic world" in overflow_message(["math"], errors, "checkpoints/arith-prm")
    on_arith = overflow_message(["arith_test_corrupt"], errors, "checkpoints/arith-prm", 9, 8192)
    assert "arithmetic world" not in on_arith and "scorer.max_length=6000" in on_arith
