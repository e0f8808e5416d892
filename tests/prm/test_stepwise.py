from __future__ import annotations

import json
from pathlib import Path

import pytest

from prm.first_error import first_error_of
from prm.stepwise import (
    SourceFormat,
    StepwiseExample,
    convert_jsonl,
    from_math_shepherd,
    from_prm800k,
    load_stepwise_dataset,
    read_stepwise,
    write_stepwise,
)
from search.inputs import InputError
from search.jsonl import read_jsonl


def example(labels: tuple[bool, ...], **kwargs: object) -> StepwiseExample:
    steps = tuple(f"step {i}" for i in range(len(labels)))
    return StepwiseExample(
        prompt="Compute 1 + 2.",
        completions=steps,
        labels=labels,
        soft_labels=tuple(0.9 if x else 0.0 for x in labels),
        **kwargs,  # type: ignore[arg-type]
    )


def test_first_error_of() -> None:
    assert first_error_of([True, True]) == -1
    assert first_error_of([True, False, True]) == 1
    assert first_error_of([False]) == 0


def test_roundtrip_and_datasets_loader(tmp_path: Path) -> None:
    rows = [
        example(
            (True, True), labeller="mc", policy="p", problem_id="a", sample_index=3, answer="3"
        ),
        example((True, False), labeller="mc", problem_id="b"),
    ]
    path = tmp_path / "d" / "stepwise.jsonl"
    write_stepwise(path, rows)
    assert read_stepwise(path) == rows
    raw = read_jsonl(path)
    assert raw[1]["first_error"] == 1 and raw[0]["first_error"] == -1
    dataset = load_stepwise_dataset(path)
    assert len(dataset) == 2
    for column in (
        "prompt",
        "completions",
        "labels",
        "soft_labels",
        "labeller",
        "policy",
        "problem_id",
        "first_error",
    ):
        assert column in dataset.column_names
    assert dataset[1]["labels"] == [True, False]
    assert dataset[0]["soft_labels"] == pytest.approx([0.9, 0.9])


def test_example_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="as many labels"):
        StepwiseExample(prompt="q", completions=("a", "b"), labels=(True,), soft_labels=(1.0,))
    with pytest.raises(ValueError, match="at least one"):
        StepwiseExample(prompt="q", completions=(), labels=(), soft_labels=())


def test_soft_labels_default_to_hard_labels() -> None:
    row = {"prompt": "q", "completions": ["a", "b"], "labels": [True, False]}
    assert StepwiseExample.from_record(row).soft_labels == (1.0, 0.0)


def prm800k_row(steps: list[dict[str, object]]) -> dict[str, object]:
    return {
        "labeler": "x",
        "question": {
            "problem": "What is 2 + 3 * 4?",
            "ground_truth_answer": "14",
            "unique_id": "test/1.json",
        },
        "label": {"steps": steps, "finish_reason": "found_error"},
    }


def completion(text: str, rating: int | None) -> dict[str, object]:
    return {"text": text, "rating": rating, "flagged": False}


def test_prm800k_follows_the_chosen_path_and_stops_at_the_error() -> None:
    row = prm800k_row(
        [
            {
                "completions": [completion("3 * 4 = 12.", 1)],
                "chosen_completion": 0,
                "human_completion": None,
            },
            {
                "completions": [completion("So 2 + 12 = 15.", -1), completion("Hmm.", 0)],
                "chosen_completion": 1,
                "human_completion": None,
            },
            {
                "completions": [completion("Then 2 + 12 = 14.", 1)],
                "chosen_completion": None,
                "human_completion": {"text": "We add: 2 + 12 = 14.", "rating": None},
            },
            {
                "completions": [
                    completion("The answer is 14.", 1),
                    completion("The answer is 15.", -1),
                ],
                "chosen_completion": None,
                "human_completion": None,
            },
            {
                "completions": [completion("never reached", 1)],
                "chosen_completion": 0,
                "human_completion": None,
            },
        ]
    )
    converted = from_prm800k(row)
    assert converted is not None
    assert converted.prompt == "What is 2 + 3 * 4?"
    assert converted.completions == (
        "3 * 4 = 12.",
        "Hmm.",
        "We add: 2 + 12 = 14.",
        "The answer is 15.",
    )
    assert converted.labels == (True, True, True, False)
    assert converted.first_error == 3
    assert converted.answer == "14" and converted.labeller == "prm800k"
    strict = from_prm800k(row, neutral_is_positive=False)
    assert strict is not None
    assert strict.completions == ("3 * 4 = 12.", "Hmm.") and strict.labels == (True, False)


def test_prm800k_edge_rows() -> None:
    nothing = prm800k_row(
        [{"completions": [completion("a", 1)], "chosen_completion": None, "human_completion": None}]
    )
    assert from_prm800k(nothing) is None
    with pytest.raises(ValueError, match=r"question\.problem"):
        from_prm800k({"foo": 1})


SHEPHERD = {
    "input": "Tom has 3 apples and buys 2 more. How many? Step 1: 3 + 2 = 5 ки\n"
    "Step 2: He has 6 apples. ки\nStep 3: The answer is: 6 ки",
    "label": "Tom has 3 apples and buys 2 more. How many? Step 1: 3 + 2 = 5 +\n"
    "Step 2: He has 6 apples. -\nStep 3: The answer is: 6 -",
    "task": "GSM8K",
}


def test_math_shepherd_row() -> None:
    converted = from_math_shepherd(SHEPHERD)
    assert converted.prompt == "Tom has 3 apples and buys 2 more. How many?"
    assert converted.completions == (
        "Step 1: 3 + 2 = 5",
        "Step 2: He has 6 apples.",
        "Step 3: The answer is: 6",
    )
    assert converted.labels == (True, False, False)
    assert converted.first_error == 1


def test_math_shepherd_rejects_misaligned_rows() -> None:
    bad = dict(SHEPHERD, label=SHEPHERD["label"].replace("How many?", "How much?"))
    with pytest.raises(ValueError, match="mismatch"):
        from_math_shepherd(bad)
    with pytest.raises(ValueError, match="Step 1"):
        from_math_shepherd({"input": "q a ки", "label": "q a +"})
    with pytest.raises(ValueError, match="step tag"):
        from_math_shepherd({"input": "q", "label": "q"})


def test_convert_jsonl(tmp_path: Path) -> None:
    source = tmp_path / "shepherd.jsonl"
    source.write_text(json.dumps(SHEPHERD, ensure_ascii=False) + "\n")
    written, skipped = convert_jsonl(source, tmp_path / "out.jsonl", SourceFormat.math_shepherd)
    assert (written, skipped) == (1, 0)
    assert load_stepwise_dataset(tmp_path / "out.jsonl")[0]["labels"] == [True, False, False]


def test_labels_may_be_0_and_1_and_other_numbers_name_the_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """TRL-style files often write labels as 0/1: read as false/true. Rows without
    soft_labels are read with their hard labels standing in; a reader that trains on soft
    labels is told how many (and only such a reader)."""
    path = tmp_path / "s.jsonl"
    row = {"prompt": "1 + 1?", "completions": ["1 + 1 = 2", "so 2"], "labels": [1, 0]}
    path.write_text(json.dumps(row) + "\n")
    with caplog.at_level("WARNING"):
        (example,) = read_stepwise(path)
    assert example.labels == (True, False) and example.soft_labels == (1.0, 0.0)
    assert "soft_labels" not in caplog.text
    with caplog.at_level("WARNING"):
        read_stepwise(path, needs_soft_labels=True)
    assert "1 of 1 examples have no soft_labels" in caplog.text
    path.write_text(json.dumps(row | {"labels": [2, 0]}) + "\n")
    with pytest.raises(InputError, match=r"s\.jsonl:1: expected 'labels'.*fix: true for a right"):
        read_stepwise(path)


def test_a_json_array_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps([{"prompt": "p"}], indent=2))
    with pytest.raises(InputError, match=r"bench\.json:1: .*opens a JSON array.*jq -c"):
        read_stepwise(path)


def test_the_json_array_fix_never_writes_over_its_input_nor_beside_it(tmp_path: Path) -> None:
    """The copy goes to the current directory under another name: the input's folder may be
    shared data (../shared/data), and a shell empties a file it redirects into first."""
    path = tmp_path / "data.jsonl"  # a JSON array saved under a .jsonl name
    path.write_text(json.dumps([{"prompt": "p"}], indent=2))
    with pytest.raises(InputError, match=r"> data\.lines\.jsonl`"):
        read_stepwise(path)


def test_converting_a_missing_file_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "prm.stepwise", "prm800k", str(tmp_path / "nope.jsonl"), str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and not out.exists()
    assert done.stderr.strip().splitlines()[-1].startswith("error: expected a JSON Lines file")


def test_processbench_data_given_as_training_data_is_named_as_an_evaluation_set(
    tmp_path: Path,
) -> None:
    """A ProcessBench file (the .json array as published, or its rows as JSON Lines) is not
    stepwise data: the error says what it is and where each goes, not how to reformat it."""
    rows = [{"id": "a", "problem": "1 + 1?", "steps": ["1 + 1 = 3"], "label": 0}]
    bench = tmp_path / "gsm8k.json"
    bench.write_text(json.dumps(rows, indent=2))
    with pytest.raises(InputError, match=r"gsm8k\.json: expected stepwise rows .*got ProcessBench"):
        read_stepwise(bench)
    lines = tmp_path / "gsm8k.jsonl"
    lines.write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(InputError, match=r"gsm8k\.jsonl:1: .*prm\.processbench.*prm\.stepwise"):
        read_stepwise(lines)


def test_a_label_count_that_does_not_match_the_steps_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    row = {"prompt": "q", "completions": ["a", "b", "c"], "labels": [True, False]}
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(InputError, match=r"got 3 completions, 2 labels; fix: one entry per step"):
        read_stepwise(path)  # no soft_labels given: none counted
    path.write_text(json.dumps(row | {"soft_labels": [1.0, 0.0]}) + "\n")
    with pytest.raises(InputError, match=r"3 completions, 2 labels, 2 soft_labels; fix"):
        read_stepwise(path)


def test_a_json_array_of_stepwise_rows_is_not_taken_for_processbench(tmp_path: Path) -> None:
    row = {"prompt": "q", "completions": ["a"], "labels": [True], "problem": "q", "steps": ["a"]}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([row | {"label": -1}], indent=2))
    with pytest.raises(InputError, match=r"opens a JSON array.*jq -c '\.\[\]'"):
        read_stepwise(path)
