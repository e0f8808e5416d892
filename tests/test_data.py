"""Dataset loaders (search.data) on the real benchmark files, generic jsonl, bad rows, configs."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from search.answers import extract_answer
from search.data import DatasetConfig, LoadedProblems, load_problems
from search.types import STEP_SEPARATOR

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = (REPO / ".." / "shared" / "data").resolve()
CONF_DIR = REPO / "conf" / "dataset"

REAL = {"math500": 500, "gsm8k": 1319, "aime24": 30, "amc23": 40}


def real_file(name: str) -> str:
    path = DATA_DIR / f"{name}_test.jsonl"
    if not path.is_file():
        pytest.skip(f"{name} not found at {path}")
    return str(path)


@pytest.mark.parametrize(("name", "size"), REAL.items())
def test_real_loaders_read_every_row(name: str, size: int) -> None:
    loaded = load_problems(DatasetConfig(name=name, path=real_file(name)))
    assert (len(loaded.problems), loaded.skipped, loaded.skipped_reasons) == (size, 0, [])
    ids = [problem.id for problem in loaded.problems]
    assert len(set(ids)) == size
    for problem in loaded.problems:
        assert problem.question and problem.answer
        assert problem.metadata["source"].startswith(str(DATA_DIR))


def test_math500_fields() -> None:
    problems = load_problems(DatasetConfig(name="math500", path=real_file("math500"))).problems
    first = problems[0]
    assert first.id == "test/precalculus/807.json"
    assert first.question.startswith("Convert the point $(0,3)$")
    assert first.answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first.metadata["subject"] == "Precalculus" and first.metadata["level"] == "Level 2"
    # The gold solution's last step states the gold answer in a box.
    assert extract_answer(first.gold_steps[-1]) == first.answer


def test_gsm8k_gold_is_the_number_after_hashes() -> None:
    problems = load_problems(DatasetConfig(name="gsm8k", path=real_file("gsm8k"))).problems
    first = problems[0]
    assert (first.id, first.answer) == ("gsm8k-0", "18")
    assert first.gold_steps == (
        "Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
        "She makes 9 * 2 = $18 every day at the farmer’s market.",
        "The answer is \\boxed{18}.",
    )
    with_commas = [p for p in problems if p.answer == "1450000"]
    assert len(with_commas) == 1  # "#### 1,450,000" in the file
    for problem in problems:
        assert problem.answer.lstrip("-").isdigit()
        assert extract_answer(STEP_SEPARATOR.join(problem.gold_steps)) == problem.answer


def test_aime24_and_amc23_answers_are_normalised() -> None:
    aime = load_problems(DatasetConfig(name="aime24", path=real_file("aime24"))).problems
    assert (aime[0].id, aime[0].answer) == ("aime24-60", "204")
    assert [p.answer for p in aime if p.metadata["source"].endswith(":8")] == ["25"]  # "025"
    assert all(p.gold_steps for p in aime)
    amc = load_problems(DatasetConfig(name="amc23", path=real_file("amc23"))).problems
    assert (amc[0].id, amc[0].answer) == ("amc23-0", "27")  # 27.0 in the file
    assert "-1" in {p.answer for p in amc}
    assert "question" not in amc[0].metadata  # a copy of the problem text


@pytest.mark.parametrize("name", REAL)
def test_limit_keeps_the_first_problems(name: str) -> None:
    path = real_file(name)
    everything = load_problems(DatasetConfig(name=name, path=path)).problems
    first = load_problems(DatasetConfig(name=name, path=path, limit=7)).problems
    assert first == everything[:7]


@pytest.mark.parametrize("split", ["train", "validation", "test", "hard", "longest"])
def test_arith_splits(split: str) -> None:
    from search.envs.arith.world import ArithDataset, make_split

    loaded = ArithDataset(split=split, limit=5).load()  # type: ignore[arg-type]
    assert loaded.problems == tuple(make_split(split, size=5))
    assert loaded.skipped == 0


def write_jsonl(path: Path, rows: Sequence[object]) -> str:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_generic_jsonl_with_custom_fields(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"prompt": "What is 2+3?", "target": 5, "key": "q1", "topic": "add"},
            "",  # blank lines are not rows
            {"prompt": "Half of 1?", "target": "\\frac{1}{2}", "key": 7},
        ],
    )
    config = DatasetConfig(
        name="jsonl", path=path, question_field="prompt", answer_field="target", id_field="key"
    )
    problems = load_problems(config).problems
    assert [(p.id, p.question, p.answer) for p in problems] == [
        ("q1", "What is 2+3?", "5"),
        ("7", "Half of 1?", "\\frac{1}{2}"),
    ]
    assert problems[0].metadata == {"topic": "add", "source": f"{path}:1"}
    assert problems[1].metadata["source"] == f"{path}:3"
    config.id_field = None
    assert [p.id for p in load_problems(config).problems] == ["mine-0", "mine-1"]


BAD_ROWS = {
    "malformed JSON": '{"question": "1+1?", "answer": ',
    "not an object": "[1, 2]",
    "missing answer": {"question": "1+1?"},
    "null answer": {"question": "1+1?", "answer": None},
    "empty answer": {"question": "1+1?", "answer": "  "},
    "empty question": {"question": " ", "answer": "2"},
    "missing question": {"answer": "2"},
    "list answer": {"question": "1+1?", "answer": [2]},
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_bad_row_raises_with_file_line_and_fix(tmp_path: Path, case: str) -> None:
    good = {"question": "2+2?", "answer": "4"}
    path = write_jsonl(tmp_path / "rows.jsonl", [good, BAD_ROWS[case], good])
    with pytest.raises(ValueError, match=r"dataset\.on_bad_row=skip") as raised:
        load_problems(DatasetConfig(name="jsonl", path=path))
    assert f"{path}:2" in str(raised.value)


def test_a_row_without_the_question_field_lists_its_keys_and_the_field_option(
    tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "1+1?", "answer": "2"}])
    with pytest.raises(ValueError) as raised:
        load_problems(DatasetConfig(name="jsonl", path=path))
    assert str(raised.value).startswith(
        f"{path}:1: bad row: expected the question in field 'question', got keys ['answer', "
        "'prompt']; fix: dataset.question_field=prompt if another field holds it; or pass "
    )
    config = DatasetConfig(name="jsonl", path=path, question_field="prompt")
    assert [p.question for p in load_problems(config).problems] == ["1+1?"]
    path = write_jsonl(tmp_path / "rows.jsonl", [{"answer": "2"}])
    with pytest.raises(ValueError, match=r"fix: dataset\.question_field=<key> if another"):
        load_problems(DatasetConfig(name="jsonl", path=path))


@pytest.mark.parametrize("case", BAD_ROWS)
def test_bad_row_skipped_and_counted(tmp_path: Path, case: str) -> None:
    good = {"question": "2+2?", "answer": "4"}
    path = write_jsonl(tmp_path / "rows.jsonl", [good, BAD_ROWS[case], good])
    loaded = load_problems(DatasetConfig(name="jsonl", path=path, on_bad_row="skip"))
    assert [p.id for p in loaded.problems] == ["rows-0", "rows-2"]  # ids keep row positions
    assert loaded.skipped == 1
    assert loaded.skipped_reasons[0].startswith(f"{path}:2: ")


def test_gsm8k_row_without_hashes_is_bad(tmp_path: Path) -> None:
    rows = [
        {"question": "q1", "answer": "1 + 1 = <<1+1=2>>2\n#### 2"},
        {"question": "q2", "answer": "no final line"},
    ]
    path = write_jsonl(tmp_path / "gsm.jsonl", rows)
    with pytest.raises(ValueError, match=r"gsm\.jsonl:2: bad row: .*#### N"):
        load_problems(DatasetConfig(name="gsm8k", path=path))
    loaded = load_problems(DatasetConfig(name="gsm8k", path=path, on_bad_row="skip"))
    assert [p.answer for p in loaded.problems] == ["2"] and loaded.skipped == 1
    assert loaded.problems[0].gold_steps == ("1 + 1 = 2", "The answer is \\boxed{2}.")


def test_a_gsm8k_rationale_read_by_the_generic_loader_names_dataset_gsm8k(
    tmp_path: Path,
) -> None:
    """dataset=jsonl would grade against the whole worked solution: refused, naming the
    loader that reads the number after '####'; an answer that merely holds '#' is fine."""
    rows = [{"question": "q1", "answer": "1 + 1 = <<1+1=2>>2\n#### 2"}]
    path = write_jsonl(tmp_path / "gsm.jsonl", rows)
    with pytest.raises(ValueError, match=r"gsm\.jsonl:1: bad row: .*worked solution .*fix: "
                       r"dataset=gsm8k"):  # fmt: skip
        load_problems(DatasetConfig(name="jsonl", path=path))
    heading = {"question": "q2", "answer": "#### Step 1\n42"}  # markdown, not GSM8K
    fine = write_jsonl(
        tmp_path / "ok.jsonl", [{"question": "q", "answer": "#3 (the third)"}, heading]
    )
    assert len(load_problems(DatasetConfig(name="jsonl", path=fine)).problems) == 2
    assert (
        load_problems(DatasetConfig(name="jsonl", path=fine)).problems[0].answer == "#3 (the third)"
    )


def test_limit_counts_good_rows_only(tmp_path: Path) -> None:
    rows = [{"answer": "1"}] + [{"question": f"q{i}", "answer": str(i)} for i in range(5)]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    loaded = load_problems(DatasetConfig(name="jsonl", path=path, limit=2, on_bad_row="skip"))
    assert [p.answer for p in loaded.problems] == ["0", "1"] and loaded.skipped == 1


def test_missing_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "math500_test.jsonl"
    with pytest.raises(FileNotFoundError, match=r"dataset\.path=") as raised:
        load_problems(DatasetConfig(name="math500", path=str(missing)))
    assert str(missing) in str(raised.value) and "PRM_SEARCH_DATA" in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "mathh500"}, "expected dataset.name in"),
        ({"name": "arith"}, "expected dataset.name in"),  # the world is its own dataset class
        ({"name": "jsonl"}, "needs dataset.path"),
        ({"name": "hub"}, "needs dataset.hub_name"),
        ({"name": "math500"}, "needs dataset.path or dataset.hub_name"),
        ({"name": "jsonl", "path": "x.jsonl", "limit": 0}, "expected dataset.limit >= 1"),
        ({"name": "math500", "path": "m.jsonl", "hub_name": "a/b"}, "expected one source"),
        ({"name": "jsonl", "path": "x.jsonl", "on_bad_row": "drop"}, "expected dataset.on_bad_row"),
    ],
)
def test_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DatasetConfig(**kwargs)  # type: ignore[arg-type]


def test_arith_dataset_errors() -> None:
    from search.envs.arith.world import ArithDataset

    with pytest.raises(ValueError, match="expected dataset.split in"):
        ArithDataset(split="dev")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected dataset.limit >= 1"):
        ArithDataset(limit=0)
    with pytest.raises(TypeError, match="path"):  # generated in code: it reads no file
        ArithDataset(path="x.jsonl")  # type: ignore[call-arg]


def test_hub_loader_reads_a_local_dataset_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    folder = tmp_path / "toy_math"
    folder.mkdir()
    write_jsonl(
        folder / "test.jsonl",
        [{"problem": "1+1?", "solution": "2"}, {"problem": "2+2?", "solution": "4"}],
    )
    config = DatasetConfig(
        name="hub", hub_name=str(folder), question_field="problem", answer_field="solution"
    )
    loaded = load_problems(config)
    assert [(p.id, p.question, p.answer) for p in loaded.problems] == [
        ("toy_math-0", "1+1?", "2"),
        ("toy_math-1", "2+2?", "4"),
    ]
    assert (tmp_path / "hf_cache").is_dir()  # the cache went to the temporary folder


@pytest.fixture
def empty_hf_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_an_unreachable_hub_dataset_fails_fast_with_the_fix(
    empty_hf_caches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DatasetConfig(name="math500", hub_name="HuggingFaceH4/MATH-500")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set.*fix: pass a local copy"):
        load_problems(config)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="reach the dataset hub.*dataset.path="):
        load_problems(config)
    assert time.perf_counter() - start < 5


def test_a_cached_or_local_hub_dataset_needs_no_hub(tmp_path: Path, empty_hf_caches: None) -> None:
    from search.data import _local_or_cached

    assert not _local_or_cached("HuggingFaceH4/MATH-500")
    (tmp_path / "datasets" / "HuggingFaceH4___math-500").mkdir(parents=True)  # load_dataset's
    assert _local_or_cached("HuggingFaceH4/MATH-500")  # offline cache
    assert _local_or_cached(str(tmp_path))  # a local folder


@pytest.mark.parametrize("config_file", sorted(CONF_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_dataset_config_composes_and_loads(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from omegaconf import OmegaConf

    monkeypatch.setenv("PRM_SEARCH_DATA", str(DATA_DIR))
    overrides: dict[str, object] = {"limit": 3}
    if config_file.stem == "jsonl":
        overrides["path"] = write_jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "1"}])
    elif config_file.stem in REAL:
        real_file(config_file.stem)
    from hydra.utils import instantiate

    from search.protocols import ProblemSource

    dataset = instantiate(OmegaConf.merge(OmegaConf.load(config_file), overrides))
    assert isinstance(dataset, ProblemSource)
    loaded = dataset.load()
    assert isinstance(loaded, LoadedProblems)
    assert 1 <= len(loaded.problems) <= 3 and loaded.skipped == 0


def test_dataset_configs_cover_every_choice() -> None:
    stems = {path.stem for path in CONF_DIR.glob("*.yaml")}
    assert stems == {
        "arith",
        "arith_hard",
        "arith_longest",
        "arith_train",
        "math500",
        "gsm8k",
        "aime24",
        "amc23",
        "jsonl",
    }


def test_real_config_default_path_is_relative_to_the_repo_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from omegaconf import OmegaConf

    real_file("math500")
    monkeypatch.delenv("PRM_SEARCH_DATA", raising=False)
    monkeypatch.chdir(REPO)
    from hydra.utils import instantiate

    config = instantiate(OmegaConf.load(CONF_DIR / "math500.yaml"))
    assert isinstance(config, DatasetConfig)
    assert config.path == "../shared/data/math500_test.jsonl"
    assert len(load_problems(config).problems) == 500
