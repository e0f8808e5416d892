"""Bad inputs across the command-line tools, as a new user would hand them in.

Every case runs a CLI in-process (its Hydra app, as ``python -m ...`` would) and must: exit
non-zero; name the file (with its line) or the key at fault in its message; and leave every
file that existed before byte for byte unchanged. The models are pointed at paths that do
not exist (``NO_MODEL``), so a case whose check came after a model load would fail with a
different message: each check runs before any model loads, and takes well under a second.

The table of cases and their messages, docs/bad_inputs.md, is written from this file:

    python tests/test_bad_inputs.py      # rewrite docs/bad_inputs.md
"""

from __future__ import annotations

import importlib
import io
import json
import re
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad_inputs.md"
NO_MODEL = "/nonexistent/model"

PROBLEM = {"id": "p1", "question": "Compute 2 + 3.", "answer": "5"}
SAMPLE = {
    "problem_id": "arith-train-0",
    "question": "Compute 2 + 3.",
    "answer": "5",
    "sample_index": 0,
    "steps": ["2 + 3 = 5", "The answer is \\boxed{5}."],
    "finished": True,
    "num_tokens": 12,
    "policy": "fake",
}
STEPWISE = {
    "prompt": "Compute 2 + 3.",
    "completions": ["2 + 3 = 5", "The answer is \\boxed{5}."],
    "labels": [True, True],
    "soft_labels": [1.0, 0.875],
    "problem_id": "p1",
}
COMPLETIONS = {"problem": "Compute 2 + 3.", "answer": "5", "completions": ["\\boxed{5}"]}
BENCH = {"problem": "Compute 2 + 3.", "steps": ["2 + 3 = 5"], "label": -1}


def line(row: dict[str, object], **changes: object) -> bytes:
    return (json.dumps(row | changes) + "\n").encode()


def drop(row: dict[str, object], key: str) -> bytes:
    return (json.dumps({k: v for k, v in row.items() if k != key}) + "\n").encode()


# The CLIs: module, and how to call its Hydra app in-process.
def _app(module: str, attribute: str = "main") -> Callable[[], None]:
    return lambda: getattr(importlib.import_module(module), attribute)()


CLIS: dict[str, tuple[str, Callable[[], None]]] = {
    "search": ("python -m search", _app("search.__main__")),
    "evaluate": ("python -m search.evaluate", _app("search.evaluate")),
    "sample": ("python -m prm.sample", _app("prm.sample")),
    "label": ("python -m prm.label", _app("prm.label.__main__")),
    "train": ("python -m prm.train", _app("prm.train")),
    "processbench": ("python -m prm.processbench", _app("prm.processbench")),
}

# Overrides every case of a CLI starts from: models that cannot load, outputs under TMP.
BASE: dict[str, list[str]] = {
    "search": [f"policy.model={NO_MODEL}", f"scorer.model={NO_MODEL}", "progress=false"],
    "evaluate": ["path=TMP/completions.jsonl", "output=TMP/eval/report.json"],
    "sample": [f"policy.model={NO_MODEL}", "output_dir=TMP/samples", "count=2"],
    "label": [
        f"policy.model={NO_MODEL}",
        "samples=TMP/samples.jsonl",
        "output_dir=TMP/labels",
        "progress=false",
    ],
    "train": [
        "train_data=TMP/stepwise.jsonl",
        f"policy_dir={NO_MODEL}",
        "output_dir=TMP/model",
        "device=cpu",
    ],
    "processbench": [
        f"scorer.model={NO_MODEL}",
        "subsets=[TMP/bench.json]",
        "output_dir=TMP/bench_out",
    ],
}
# The good input file of each CLI (a case replaces it or adds others).
MC_RECORD = {  # a labeller=mc records.jsonl row of the sample above
    "problem_id": "arith-train-0",
    "sample_index": 0,
    "labeller": "mc",
    "first_error": -1,
    "labels": [True, True],
    "soft_labels": [1.0, 0.5],
}
GOOD: dict[str, dict[str, bytes]] = {
    "search": {},
    "evaluate": {"completions.jsonl": line(COMPLETIONS)},
    "sample": {},
    "label": {"samples.jsonl": line(SAMPLE)},
    "train": {"stepwise.jsonl": line(STEPWISE)},
    "processbench": {"bench.json": json.dumps([BENCH]).encode()},
}
SEARCH_JSONL = ["dataset=jsonl", "dataset.path=TMP/problems.jsonl"]
FAKE_RUN = ["policy=fake", "scorer=fake", "strategy.n=2", "dataset.limit=2"]


@dataclass(frozen=True)
class Case:
    """``args`` after the CLI's ``BASE``; ``files`` written under TMP first (a file that
    is also in ``GOOD`` replaces it); ``expect``: a regex the message must match, naming the
    file or key; ``before``: a CLI run (args) that must succeed first, making an output."""

    cli: str
    name: str
    args: tuple[str, ...]
    expect: str
    files: dict[str, bytes] = field(default_factory=dict)
    before: tuple[str, ...] | None = None


CAUSAL = json.dumps({"architectures": ["Qwen2ForCausalLM"], "max_position_embeddings": 256})
CLASSIFIER = json.dumps({"architectures": ["Qwen2ForTokenClassification"]})


def checkpoint(folder: str, config: str = CAUSAL, **files: bytes) -> dict[str, bytes]:
    """A local checkpoint's small files (no weights: each check runs before any load)."""
    tokenizer = {"tokenizer.json": b"{}", "tokenizer_config.json": b"{}"}
    return {f"{folder}/{name}": data for name, data in (tokenizer | files).items()} | {
        f"{folder}/config.json": config.encode()
    }


EMBEDDED_PRM = ROOT / "checkpoints" / "arith-prm"
PRM_TOKENIZER = {  # the embedded PRM's tokenizer files, without its training log
    f"own_prm/{name}": (EMBEDDED_PRM / name).read_bytes()
    for name in ("tokenizer.json", "tokenizer_config.json")
} | {"own_prm/config.json": CLASSIFIER.encode()}

CASES = [
    # python -m search: config
    Case("search", "strategy.n=0", ("strategy.n=0",), r"strategy\.n >= 1"),
    Case(
        "search",
        "n not a multiple of the beam width",
        ("+strategy=beam", "strategy.n=6"),
        r"strategy\.n to be a multiple of strategy\.beam_width",
    ),
    Case("search", "unknown aggregation", ("aggregation=median",), r"aggregation"),
    Case("search", "unknown strategy key", ("strategy.nn=4",), r"strategy\.nn|nn"),
    Case("search", "batch_problems=0", ("batch_problems=0",), r"batch_problems >= 1"),
    Case(
        "search",
        "lookahead for mcts",
        ("+strategy=mcts", "strategy.lookahead=1"),
        r"strategy\.lookahead=0 for mcts",
    ),
    Case(
        "search",
        "negative lookahead temperature",
        ("+strategy=beam", "strategy.lookahead_temperature=-1"),
        r"strategy\.lookahead_temperature >= 0",
    ),
    Case(
        "search",
        "negative extra_simulations",
        ("strategy.extra_simulations=-1",),
        r"strategy\.extra_simulations >= 0",
    ),
    Case("search", "negative c_puct", ("strategy.c_puct=-1",), r"strategy\.c_puct >= 0"),
    Case(
        "search",
        "beam without a scorer",
        ("+strategy=beam", "scorer=none"),
        r"expected a scorer .* for strategy beam",
    ),
    Case(
        "search",
        "prm pick without a scorer",
        ("scorer=none", "strategy.select=prm"),
        r"strategy\.select=prm",
    ),
    Case("search", "unknown select rule", ("strategy.select=best",), r"select"),
    Case(
        "search",
        "a setting of another strategy",
        ("strategy.num_simulations=64",),
        r"strategy\.num_simulations, read only by mcts; fix: \+strategy=mcts",
    ),
    Case(
        "search",
        "a select rule for mcts",
        ("+strategy=mcts", "strategy.select=weighted"),
        r"no strategy\.select for mcts.*fix: strategy\.mcts_final=best_value",
    ),
    Case(
        "search",
        "unknown scorer dtype",
        ("scorer.dtype=float17",),
        r"expected scorer\.dtype in .*got 'float17'; fix: scorer\.dtype=auto",
    ),
    Case(
        "search",
        "unknown scorer setting",
        ("+scorer.foo=1",),
        r"got unknown \['scorer\.foo'\]; fix",
    ),
    Case(
        "search",
        "scorer batch size 0",
        ("scorer.hf.batch_size=0",),
        r"expected scorer\.hf\.batch_size >= 1, got 0; fix",
    ),
    Case(
        "search",
        "scorer prefix cache below 0",
        ("scorer.hf.prefix_cache_tokens=-1",),
        r"expected scorer\.hf\.prefix_cache_tokens >= 0 \(0: off\), got -1; fix",
    ),
    Case(
        "search",
        "unknown scorer auto class",
        ("+scorer.hf.auto_class=Foo",),
        r"expected scorer\.hf\.auto_class in .*got 'Foo'; fix: scorer\.hf\.auto_class=null",
    ),
    Case(
        "search",
        "unknown prompt format of a policy server",
        ("policy=openai_server", "policy.prompt_format=xml", "scorer=fake"),
        r"policy: expected policy\.prompt_format in .*got 'xml'; fix",
    ),
    Case(
        "search",
        "policy folder without a model",
        ("policy.model=TMP/nomodel", "scorer=fake"),
        r"policy\.model: expected a transformers checkpoint \(config\.json\) in .*nomodel",
        {"nomodel/notes.txt": b"weights to come"},
    ),
    Case(
        "search",
        "policy folder without a tokenizer",
        ("policy.model=TMP/notok", "scorer=fake"),
        r"policy\.model: expected tokenizer files .*notok, got none; fix: save it there "
        r"\(tokenizer\.save_pretrained\)",  # a local policy has no tokenizer key of its own
        {"notok/config.json": CAUSAL.encode()},
    ),
    Case(
        "search",
        "a PRM given as the policy",
        ("policy.model=TMP/prm", "scorer=fake"),
        r"expected a causal language model .*got Qwen2ForTokenClassification .*fix: policy\.",
        checkpoint("prm", CLASSIFIER),
    ),
    Case(
        "search",
        "policy chat template asked, tokenizer has none",
        ("policy.model=TMP/policy", "policy.use_chat_template=true", "scorer=fake"),
        r"policy\.use_chat_template: expected a tokenizer with a chat template, got none",
        checkpoint("policy"),
    ),
    Case(
        "search",
        "vLLM context above the model's",
        (
            "policy.model=TMP/policy",
            "policy.backend=vllm",
            "+policy.vllm.max_model_len=4096",
            "scorer=fake",
        ),
        r"policy\.vllm\.max_model_len: expected at most the model's context of 256 .*got 4096; "
        r"fix: policy\.vllm\.max_model_len=256",
        checkpoint("policy"),
    ),
    Case(
        "processbench",
        "PRM folder without a tokenizer",
        ("scorer.model=TMP/prm",),
        r"scorer\.model: expected tokenizer files .*prm, got none; fix: scorer\.tokenizer=",
        {"prm/config.json": CLASSIFIER.encode()},
    ),
    Case(
        "search",
        "PRM weights that are Git LFS pointers",
        ("scorer.model=TMP/own_prm", "policy=fake"),
        r"scorer\.model: expected model weights in .*own_prm, got Git LFS pointers or empty "
        r"files in their place \(model\.safetensors\); fix: fetch the files themselves",
        PRM_TOKENIZER
        | {"own_prm/model.safetensors": b"version https://git-lfs.github.com/spec/v1\n"},
    ),
    Case(
        "search",
        "PRM folder without weights",
        ("scorer.model=TMP/own_prm", "policy=fake"),
        r"scorer\.model: expected model weights \(model\.safetensors, pytorch_model\.bin, or "
        r"their shards\) in .*own_prm, got none; fix: point scorer\.model at the folder",
        PRM_TOKENIZER,
    ),
    Case(
        "search",
        "step tag of several tokens",
        ("scorer.model=TMP/own_prm", "scorer.step_tag=abcxyz", "policy=fake"),
        r"expected the step tag 'abcxyz' to be exactly one token .*fix: .*scorer\.step_tag",
        PRM_TOKENIZER,
    ),
    Case(
        "search",
        "unknown policy dtype",
        ("policy.dtype=half",),
        r"expected policy\.dtype in .*got 'half'; fix",
    ),
    Case(
        "search",
        "dataset file missing",
        ("dataset=jsonl", "dataset.path=TMP/none.jsonl"),
        r"none\.jsonl",
    ),
    Case(
        "search",
        "dataset not UTF-8",
        tuple(SEARCH_JSONL),
        r"problems\.jsonl:2: .*expected UTF-8 text, got byte 0xff",
        {"problems.jsonl": line(PROBLEM) + b'{"question": "\xff"}\n'},
    ),
    Case(
        "search",
        "dataset malformed JSON",
        tuple(SEARCH_JSONL),
        r"problems\.jsonl:1: .*malformed JSON",
        {"problems.jsonl": b'{"question": \n'},
    ),
    Case(
        "search",
        "dataset NaN answer",
        tuple(SEARCH_JSONL),
        r"problems\.jsonl:1: .*got NaN \(not a JSON number\)",
        {"problems.jsonl": b'{"question": "q", "answer": NaN}\n'},
    ),
    Case(
        "search",
        "dataset row missing its question",
        tuple(SEARCH_JSONL),
        r"problems\.jsonl:1: .*question",
        {"problems.jsonl": drop(PROBLEM, "question")},
    ),
    Case(
        "search",
        "dataset question not a string",
        tuple(SEARCH_JSONL),
        r"problems\.jsonl:1: .*question in field .question. to be non-empty text, got list",
        {"problems.jsonl": line(PROBLEM, question=["a", "b"])},
    ),
    Case(
        "search",
        "dataset row not an object",
        tuple(SEARCH_JSONL),
        r"problems\.jsonl:1: .*JSON object",
        {"problems.jsonl": b"[1, 2]\n"},
    ),
    Case(
        "search",
        "dataset answer missing",
        tuple(SEARCH_JSONL),
        r"problems\.jsonl:1: .*answer",
        {"problems.jsonl": drop(PROBLEM, "answer")},
    ),
    Case(
        "search",
        "dataset duplicate ids",
        (*SEARCH_JSONL, "dataset.id_field=id"),
        r"repeated: \['p1'\]",
        {"problems.jsonl": line(PROBLEM) + line(PROBLEM)},
    ),
    Case(
        "search",
        "dataset a GSM8K rationale as the answer",
        tuple(SEARCH_JSONL),
        r"problems\.jsonl:1: .*worked solution .*fix: dataset=gsm8k",
        {"problems.jsonl": line(PROBLEM, answer="2 + 3 = <<2+3=5>>5\n#### 5")},
    ),
    Case(
        "search",
        "dataset empty",
        tuple(SEARCH_JSONL),
        r"at least one problem",
        {"problems.jsonl": b""},
    ),
    Case(
        "search",
        "output under a regular file",
        ("hydra.run.dir=TMP/file.txt/run",),
        r"file\.txt",
        {"file.txt": b"not a directory\n"},
    ),
    Case(  # the run directory is removed only when it holds nothing but Hydra's files
        "search",
        "bad setting, run directory holding a file of the user's",
        ("strategy.n=0", "hydra.run.dir=TMP/mine"),
        r"strategy\.n >= 1",
        {"mine/notes.txt": b"kept\n"},
    ),
    Case(
        "search",
        "resume with other settings",
        (*FAKE_RUN, "strategy.n=4", "hydra.run.dir=TMP/run"),
        r"strategy\.n: 2 -> 4",
        before=(*FAKE_RUN, "hydra.run.dir=TMP/run"),
    ),
    Case(
        "search",
        "resume with another aggregation",
        (*FAKE_RUN, "aggregation=prod", "hydra.run.dir=TMP/run"),
        r"aggregation: 'min' -> 'prod'",
        before=(*FAKE_RUN, "hydra.run.dir=TMP/run"),
    ),
    Case(
        "search",
        "resume onto a changed dataset",
        (
            *SEARCH_JSONL,
            "policy=fake",
            "scorer=fake",
            "strategy.n=2",
            "hydra.run.dir=TMP/run",
            "dataset.path=TMP/changed.jsonl",
        ),
        r"dataset\.path|problem p1",
        {"problems.jsonl": line(PROBLEM), "changed.jsonl": line(PROBLEM, answer="6")},
        before=(
            *SEARCH_JSONL,
            "policy=fake",
            "scorer=fake",
            "strategy.n=2",
            "hydra.run.dir=TMP/run",
        ),
    ),
    Case(
        "search",
        "results.jsonl corrupt in the middle",
        (*FAKE_RUN, "dataset.limit=3", "hydra.run.dir=TMP/broken"),
        r"results\.jsonl:1: .*malformed JSON",
        {"broken/results.jsonl": b"{oops\n" + line({"id": "x"})},
    ),
    Case(
        "search",
        "policy model missing",
        ("scorer=none", "strategy.select=majority"),
        r"policy\.model: .*/nonexistent/model",
    ),
    Case(
        "search",
        "scorer model missing, policy fine",
        ("policy=arith_tiny",),
        r"scorer\.model: .*/nonexistent/model",
    ),
    # python -m search.evaluate
    Case("evaluate", "input missing", ("path=TMP/none.jsonl",), r"none\.jsonl"),
    Case(
        "evaluate",
        "input not UTF-8",
        (),
        r"completions\.jsonl:1: bad line .*expected UTF-8 text, got byte 0xfe",
        {"completions.jsonl": b'{"problem": "\xfe"}\n'},
    ),
    Case(
        "evaluate",
        "input malformed JSON",
        (),
        r"completions\.jsonl:2: .*malformed JSON",
        {"completions.jsonl": line(COMPLETIONS) + b"{\n"},
    ),
    Case(
        "evaluate",
        "a problem on two lines",
        (),
        r"completions\.jsonl:2: expected each problem once",
        {"completions.jsonl": line(COMPLETIONS) + line(COMPLETIONS)},
    ),
    Case(
        "evaluate",
        "answer missing",
        (),
        r"completions\.jsonl:1: .*answer",
        {"completions.jsonl": drop(COMPLETIONS, "answer")},
    ),
    Case(
        "evaluate",
        "completions a string",
        (),
        r"completions\.jsonl:1: .*completions",
        {"completions.jsonl": line(COMPLETIONS, completions="\\boxed{5}")},
    ),
    Case(
        "evaluate",
        "score out of range",
        (),
        r"completions\.jsonl:1: .*score",
        {"completions.jsonl": line(COMPLETIONS, scores=[[1.5]])},
    ),
    Case(
        "evaluate",
        "empty input",
        (),
        r"completions\.jsonl: expected at least one line",
        {"completions.jsonl": b"\n"},
    ),
    Case(
        "evaluate",
        "output under a regular file",
        ("output=TMP/file.txt/report.json",),
        r"file\.txt",
        {"file.txt": b"x\n"},
    ),
    Case("evaluate", "unknown format", ("format=csv",), r"format"),
    # python -m prm.sample
    Case("sample", "count=0", ("count=0",), r"count >= 1"),
    Case("sample", "negative start", ("start=-1",), r"start >= 0"),
    Case("sample", "num_samples=0", ("num_samples=0",), r"num_samples >= 1"),
    Case("sample", "chunk_problems=0", ("chunk_problems=0",), r"chunk_problems >= 1"),
    Case("sample", "unknown key", ("num_sample=4",), r"num_sample"),
    Case(
        "sample",
        "resume with other settings",
        ("policy=fake", "num_samples=3"),
        r"num_samples: 2 -> 3",
        before=("policy=fake", "num_samples=2", "progress=false"),
    ),
    Case(
        "sample",
        "samples.jsonl corrupt in the middle",
        ("policy=fake", "progress=false"),
        r"samples\.jsonl:1: .*malformed JSON",
        {"samples/samples.jsonl": b"{oops\n" + line(SAMPLE)},
    ),
    Case(
        "sample",
        "unknown policy dtype",
        ("policy.dtype=x",),
        r"expected policy\.dtype in .*got 'x'; fix",
    ),
    # python -m prm.label
    Case("label", "samples missing", ("samples=TMP/none.jsonl",), r"none\.jsonl"),
    Case(
        "label",
        "judge server not there",
        ("labeller=judge", "labeller.critic.base_url=http://127.0.0.1:9"),
        r"error: .*http://127\.0\.0\.1:9",
    ),
    Case(
        "label",
        "MC policy batch size 0",
        ("labeller=mc", "policy.hf.batch_size=0"),
        r"expected policy\.hf\.batch_size >= 1, got 0; fix",
    ),
    Case(
        "label",
        "consensus with MC records of other steps",
        ("labeller=consensus", "labeller.mc_records=TMP/mc.jsonl"),
        r"mc\.jsonl: expected the record of \('arith-train-0', 0\) to label the steps.*fix:",
        {"mc.jsonl": line(MC_RECORD, steps_sha="0123456789abcdef")},
    ),
    Case(
        "label",
        "consensus with a judge's records as MC records",
        ("labeller=consensus", "labeller.mc_records=TMP/mc.jsonl"),
        r"mc\.jsonl:1: expected records of an MC labeller .*got labeller 'calculator'.*fix:",
        {"mc.jsonl": line(MC_RECORD, labeller="calculator")},
    ),
    Case(
        "label",
        "samples not UTF-8",
        (),
        r"samples\.jsonl:1: expected UTF-8 text",
        {"samples.jsonl": b'{"steps": "\xff"}\n'},
    ),
    Case(
        "label",
        "samples malformed in the middle",
        (),
        r"samples\.jsonl:1: .*malformed",
        {"samples.jsonl": b"{\n" + line(SAMPLE)},
    ),
    Case(
        "label",
        "samples torn last line",
        (),
        r"samples\.jsonl:2: the last line is incomplete",
        {"samples.jsonl": line(SAMPLE) + b'{"problem_id": "ar'},
    ),
    Case(
        "label",
        "samples missing sample_index",
        (),
        r"samples\.jsonl:1: .*'sample_index'",
        {"samples.jsonl": drop(SAMPLE, "sample_index")},
    ),
    Case(
        "label",
        "steps given as a string",
        (),
        r"samples\.jsonl:1: .*'steps'.*list of strings",
        {"samples.jsonl": line(SAMPLE, steps="2 + 3 = 5")},
    ),
    Case(
        "label",
        "finished not a boolean",
        (),
        r"samples\.jsonl:1: .*'finished'",
        {"samples.jsonl": line(SAMPLE, finished="yes")},
    ),
    Case(
        "label",
        "sample listed twice",
        (),
        r"samples\.jsonl:2: .*once",
        {"samples.jsonl": line(SAMPLE) + line(SAMPLE)},
    ),
    Case(
        "label",
        "empty samples",
        (),
        r"samples\.jsonl: expected sampled solutions, got an empty",
        {"samples.jsonl": b""},
    ),
    Case("label", "num_rollouts=0", ("labeller.num_rollouts=0",), r"num_rollouts >= 1"),
    Case("label", "threshold out of range", ("labeller.threshold=1.5",), r"threshold < 1"),
    Case("label", "chunk_solutions=0", ("chunk_solutions=0",), r"chunk_solutions >= 1"),
    Case("label", "unknown labeller", ("labeller=oracle",), r"labeller"),
    Case(
        "label",
        "resume with other settings",
        ("labeller=calculator", "seed=1"),
        r"seed: 0 -> 1",
        before=("labeller=calculator",),
    ),
    Case(
        "label",
        "records corrupt in the middle",
        ("labeller=calculator",),
        r"records\.jsonl:1: .*malformed JSON",
        {"labels/records.jsonl": b"{oops\n" + line({"problem_id": "x"})},
    ),
    # python -m prm.train
    Case("train", "training data missing", ("train_data=TMP/none.jsonl",), r"none\.jsonl"),
    Case(
        "train",
        "training data not UTF-8",
        (),
        r"stepwise\.jsonl:1: expected UTF-8",
        {"stepwise.jsonl": b'{"prompt": "\xff"}\n'},
    ),
    Case(
        "train",
        "labels missing",
        (),
        r"stepwise\.jsonl:1: .*'labels'",
        {"stepwise.jsonl": drop(STEPWISE, "labels")},
    ),
    Case(
        "train",
        "completions a string",
        (),
        r"stepwise\.jsonl:1: .*'completions'",
        {"stepwise.jsonl": line(STEPWISE, completions="one step")},
    ),
    Case(
        "train",
        "soft label above 1",
        ("loss=soft",),
        r"stepwise\.jsonl:1: .*soft_labels\[0\]",
        {"stepwise.jsonl": line(STEPWISE, soft_labels=[7.5, 1.0])},
    ),
    Case(
        "train",
        "soft label NaN",
        ("loss=soft",),
        r"stepwise\.jsonl:1: .*NaN",
        {"stepwise.jsonl": line(STEPWISE)[:-2] + b', "extra": NaN}\n'},
    ),
    Case(
        "train",
        "labels and steps disagree",
        (),
        r"stepwise\.jsonl:1: .*one label per completion",
        {"stepwise.jsonl": line(STEPWISE, labels=[True])},
    ),
    Case(
        "train",
        "ProcessBench rows as training data",
        (),
        r"stepwise\.jsonl:1: .*got ProcessBench rows",
        {"stepwise.jsonl": line({"id": "a", "problem": "1 + 1?", "steps": ["2"], "label": -1})},
    ),
    Case(
        "train",
        "export_dir is the starting checkpoint",
        ("policy_dir=null", f"init_checkpoint={NO_MODEL}", f"export_dir={NO_MODEL}"),
        r"export_dir apart from init_checkpoint",
    ),
    Case("train", "max_dropped_share above 1", ("max_dropped_share=2",), r"max_dropped_share <= 1"),
    Case(
        "train",
        "empty training data",
        (),
        r"stepwise\.jsonl: expected stepwise examples",
        {"stepwise.jsonl": b""},
    ),
    Case("train", "validation data missing", ("val_data=TMP/none.jsonl",), r"none\.jsonl"),
    # python -m prm.processbench
    Case("processbench", "subset file missing", ("subsets=[TMP/none.json]",), r"none\.json"),
    Case(
        "processbench",
        "subset not UTF-8",
        (),
        r"bench\.json: expected UTF-8",
        {"bench.json": b'[{"problem": "\xff"}]'},
    ),
    Case(
        "processbench",
        "subset malformed JSON",
        (),
        r"bench\.json:1: .*malformed JSON",
        {"bench.json": b"[{"},
    ),
    Case(
        "processbench",
        "subset empty",
        (),
        r"bench\.json: expected ProcessBench samples",
        {"bench.json": b"[]"},
    ),
    Case(
        "processbench",
        "label out of range",
        (),
        r"bench\.json\[0\]: expected 'label'",
        {"bench.json": json.dumps([BENCH | {"label": 5}]).encode()},
    ),
    Case(
        "processbench",
        "steps a string",
        (),
        r"bench\.json\[0\]: expected 'steps'",
        {"bench.json": json.dumps([BENCH | {"steps": "2 + 3 = 5"}]).encode()},
    ),
    Case(
        "processbench",
        "sample longer than the PRM's max_length",
        ("scorer=arith_prm", "scorer.model=TMP/short_prm", "scorer.max_length=8"),
        r"subset bench: expected every sample to fit the PRM's max_length=8 tokens once its "
        r"question is dropped, got 1 of 1 samples longer, the longest \d+ tokens for sample "
        r"'bench-0'; fix: scorer\.max_length=\d+ \(the model's context is 256\)",
        {  # the embedded PRM with broken weights: refused before any load
            f"short_prm/{name}": (EMBEDDED_PRM / name).read_bytes()
            for name in ("config.json", "tokenizer.json", "tokenizer_config.json")
        }
        | {"short_prm/model.safetensors": b"not the weights"},
    ),
    Case("processbench", "threshold above 1", ("threshold=2",), r"threshold <= 1"),
    Case("processbench", "limit=0", ("limit=0",), r"limit >= 1"),
    Case(
        "processbench",
        "output under a regular file",
        ("output_dir=TMP/file.txt/out",),
        r"file\.txt",
        {"file.txt": b"x\n"},
    ),
]


@dataclass(frozen=True)
class Outcome:
    code: int
    message: str


def with_base(cli: str, args: tuple[str, ...]) -> list[str]:
    """The CLI's base overrides, less a ``group.model=`` override when the case picks
    another ``group=`` (the fake policy has no model to point anywhere)."""
    chosen = {arg.split("=")[0].lstrip("+") for arg in args if "." not in arg.split("=")[0]}
    kept = [arg for arg in BASE[cli] if arg.split(".")[0] not in chosen or "=" not in arg]
    return [*kept, *args]


def run_case_cli(cli: str, args: list[str], tmp: Path) -> Outcome:
    """Run one CLI in-process with ``args`` (``TMP`` replaced); its exit code and output."""
    program, app = CLIS[cli]
    argv = [program, *(arg.replace("TMP", str(tmp)) for arg in args)]
    if not any(arg.startswith("hydra.run.dir=") for arg in argv):
        argv.append(f"hydra.run.dir={tmp}/hydra/{cli}")
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = argv
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            app()
    except SystemExit as exit:
        if isinstance(exit.code, str):
            err.write(exit.code)
            code = 1
        else:
            code = int(exit.code or 0)
    except Exception as error:  # an error Hydra did not handle: still a failure
        err.write(f"{type(error).__name__}: {error}")
        code = 1
    finally:
        sys.argv = saved
    return Outcome(code, err.getvalue() + out.getvalue())


def snapshot(tmp: Path) -> dict[Path, bytes]:
    return {
        path: path.read_bytes()
        for path in tmp.rglob("*")
        # hydra/ and .hydra/: Hydra's own record of each launch (refused ones included); a
        # run's *.log gets the refusal's line appended (search.inputs.stop_with)
        if path.is_file()
        and not {"hydra", ".hydra"} & set(path.parts)
        and path.name != ".lock"
        and path.suffix != ".log"
    }


def run_case(case: Case, tmp: Path) -> Outcome:
    for name, data in (GOOD[case.cli] | case.files).items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(data)
    if case.before is not None:
        done = run_case_cli(case.cli, with_base(case.cli, case.before), tmp)
        assert done.code == 0, done.message[-2000:]
    before = snapshot(tmp)
    outcome = run_case_cli(case.cli, with_base(case.cli, case.args), tmp)
    changed = [str(p) for p, data in before.items() if not p.exists() or p.read_bytes() != data]
    assert not changed, f"a bad input changed existing files: {changed}"
    return outcome


@pytest.mark.parametrize("case", CASES, ids=[f"{c.cli}: {c.name}" for c in CASES])
def test_bad_input_fails_naming_what_is_wrong(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    outcome = run_case(case, tmp_path)
    assert outcome.code != 0, f"exit 0 on a bad input:\n{outcome.message[-2000:]}"
    assert re.search(case.expect, outcome.message, re.S), outcome.message[-3000:]
    assert "Error loading" not in outcome.message  # no model load was attempted first
    own_dir = not any(arg.startswith("hydra.run.dir=") for arg in case.args)
    if case.cli == "search" and case.before is not None:  # a kept run's log says how it ended
        logs = "".join(p.read_text() for p in (tmp_path / "run").glob("*.log"))
        assert "[ERROR] - error: expected" in logs, logs[-2000:]
    run_dir = tmp_path / "hydra" / case.cli
    if case.before is None and own_dir and run_dir.exists():  # a run made for this case...
        logged = [p for p in run_dir.glob("*.log") if p.stat().st_size]
        assert logged, sorted(map(str, run_dir.rglob("*")))  # ...is gone, unless it logged


def test_there_are_enough_cases_and_the_doc_lists_them() -> None:
    assert len(CASES) >= 60
    assert len({(c.cli, c.name) for c in CASES}) == len(CASES)
    doc = DOC.read_text(encoding="utf-8")
    missing = [c.name for c in CASES if f"| {c.name} |" not in doc]
    assert not missing, f"docs/bad_inputs.md lacks {missing}; fix: python {__file__}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"lists the {len(CASES)} bad inputs tried" in readme  # README's count is the suite's


def first_line(message: str, tmp: Path) -> str:
    """The error line of a message, with the temporary directory shown as ``TMP``."""
    noise = ("Error executing job", "Set the environment", "Traceback", "full_key", "  File")
    lines = [x.strip() for x in message.splitlines() if x.strip() and not x.startswith(noise)]
    expected = [x for x in lines if "expected" in x]
    text = expected[-1] if expected else " ".join(lines[:2])
    text = text.replace(str(tmp), "TMP").replace(str(ROOT), "REPO").replace("|", "\\|")
    return text[:300] + ("..." if len(text) > 300 else "")


def write_doc() -> None:
    import tempfile

    rows = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name).resolve()
            import os

            os.chdir(tmp)
            outcome = run_case(case, tmp)
            command = " ".join([CLIS[case.cli][0], *case.args]).replace("TMP", "TMP")
            message = first_line(outcome.message, tmp)
            rows.append(f"| {case.cli} | {case.name} | `{command}` | {outcome.code} | {message} |")
    DOC.write_text(
        "# Bad inputs and what they get\n\n"
        "Every row is a case of `tests/test_bad_inputs.py` (regenerate this file with "
        "`python tests/test_bad_inputs.py`). Each exits non-zero before any model loads, "
        "names the file (and line) or the key at fault, and changes no existing file (a kept "
        "run directory's log gets the error line). "
        "Files of a case live in a temporary directory, shown as `TMP`; the repository is "
        "`REPO`.\n\n"
        "| CLI | bad input | command (after the case's base overrides) | exit | message |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    write_doc()


def test_a_run_refused_after_its_fingerprint_was_written_leaves_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fingerprint is written before the components are built: a constructor's refusal
    (here the fake policy's) comes after it, and the directory still holds nothing of a run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    outcome = run_case_cli("search", [*FAKE_RUN, "policy.error_rate=2"], tmp_path)
    assert outcome.code == 1 and "policy: expected 0 <= error_rate <= 1" in outcome.message
    assert not (tmp_path / "hydra" / "search").exists()


def test_a_refused_pipeline_run_leaves_no_output_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prm.sample, prm.label and prm.train keep Hydra's files in OUTPUT_DIR/hydra/<time>
    (their configs' hydra.run.dir): a run refused on its inputs removes that, and hydra/
    when it is left empty; OUTPUT_DIR stays (a script may have made it), with your files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")

    def refused(output_dir: str) -> Outcome:
        args = [
            "train_data=TMP/missing.jsonl",
            f"policy_dir={NO_MODEL}",
            f"output_dir=TMP/{output_dir}",
            f"hydra.run.dir=TMP/{output_dir}/hydra/2026-12-02_00-00-00",  # the default's shape
        ]
        return run_case_cli("train", args, tmp_path)

    outcome = refused("run")
    assert outcome.code == 1 and "missing.jsonl, got no file" in outcome.message
    assert list((tmp_path / "run").iterdir()) == []
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    assert refused("kept").code == 1
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["notes.txt"]
