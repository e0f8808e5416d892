"""Draw docs/architecture.md's diagram from the code: a mermaid graph of which part imports
which, read from every ``import`` statement (function-level imports included) of ``search``
and ``prm``. Parts are groups of modules (``PARTS``); an arrow A --> B means some module of
A imports some module of B.

    python docs/architecture.py          # rewrite the diagram between the markers
    python docs/architecture.py --check  # exit 1 when the diagram is out of date (a test runs it)

argparse, not Hydra: one flag, no config groups.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- DIAGRAM:BEGIN (python docs/architecture.py) -->", "<!-- DIAGRAM:END -->"

# (node id, label, module prefixes), first match wins; subgraph by the id's first word.
PARTS: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "core_main",
        "search.__main__, config<br/>run, results, progress<br/>rundir, inputs",
        (
            "search.__main__",
            "search.config",
            "search.run",
            "search.results",
            "search.progress",
            "search.rundir",
            "search.inputs",
        ),
    ),
    (
        "core_strategies",
        "search.strategies<br/>base, tree, best_of_n, beam, dvts, mcts",
        ("search.strategies",),
    ),
    ("core_generators", "search.generators<br/>hf, vllm, openai_server", ("search.generators",)),
    ("core_remote", "search.remote<br/>HTTP client for model servers", ("search.remote",)),
    ("core_launchers", "search.launchers<br/>ray (problems over workers)", ("search.launchers",)),
    (
        "core_seams",
        "search.types, protocols, guards",
        ("search.types", "search.protocols", "search.guards"),
    ),
    (
        "core_answers",
        "search.selection, aggregation<br/>answers, grading",
        ("search.selection", "search.aggregation", "search.answers", "search.grading"),
    ),
    ("core_data", "search.data", ("search.data",)),
    ("core_prompting", "search.prompting", ("search.prompting",)),
    (
        "core_support",
        "search.resolve, components, optim<br/>jsonl, seeding, kv_tree",
        (
            "search.resolve",
            "search.components",
            "search.optim",
            "search.jsonl",
            "search.seeding",
            "search.kv_tree",
        ),
    ),
    ("serve_app", "search.serve<br/>app, service", ("search.serve",)),
    (
        "eval_evaluate",
        "search.evaluate, metrics<br/>summarize, trees",
        ("search.evaluate", "search.metrics", "search.summarize", "search.trees"),
    ),
    (
        "env_arith",
        "search.envs.arith<br/>world, checker, tokenizer<br/>train_policy, export, fakes",
        ("search.envs",),
    ),
    ("prm_scoring", "prm.scoring<br/>families x backends (hf, vllm, server)", ("prm.scoring",)),
    ("prm_label", "prm.label<br/>mc, judge, calculator<br/>consensus, quality", ("prm.label",)),
    (
        "prm_data",
        "prm.sample, stepwise<br/>first_error",
        ("prm.sample", "prm.stepwise", "prm.first_error"),
    ),
    ("prm_train", "prm.train, arith_model, curve", ("prm.train", "prm.arith_model", "prm.curve")),
    ("prm_processbench", "prm.processbench", ("prm.processbench",)),
]
SUBGRAPHS = {
    "core": "engine core",
    "serve": "search as a service",
    "eval": "evaluation",
    "env": "task environment",
    "prm": "PRM",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute imports of this repo's packages)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("search", "prm")}


def part_of(module: str) -> str | None:
    for node_id, _, prefixes in PARTS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return node_id
    return None


def own_part(module: str) -> tuple[str, str]:
    """(node id, label) of a module no part names: a node of its own, in the engine core
    (``search``) or the PRM subgraph, until someone files it under a part."""
    top = ".".join(module.split(".")[:2])
    prefix = "core" if top.startswith("search") else "prm"
    return f"{prefix}_x_{top.replace('.', '_')}", top


def all_parts() -> list[tuple[str, str]]:
    """(node id, label) of every part, the named ones first."""
    parts = [(node_id, label) for node_id, label, _ in PARTS]
    extra = sorted({own_part(m) for m in modules() if part_of(m) is None})
    return parts + extra


def modules() -> list[str]:
    names = [
        module_name(p) for pkg in ("search", "prm") for p in sorted((ROOT / pkg).rglob("*.py"))
    ]
    return [name for name in names if name not in ("search", "prm")]  # not the docstrings


def import_edges() -> set[tuple[str, str]]:
    """(importing part, imported part) for every cross-part import in search/ and prm/."""
    edges: set[tuple[str, str]] = set()
    known = set(modules())
    for name in known:
        path = ROOT / (name.replace(".", "/") + ".py")
        if not path.is_file():
            path = ROOT / name.replace(".", "/") / "__init__.py"
        source = part_of(name) or own_part(name)[0]
        for module in imported_modules(path):
            if module not in known and module.rsplit(".", 1)[0] in known:
                module = module.rsplit(".", 1)[0]  # ``from a.b import name``: the module a.b
            if module not in known:
                continue
            target = part_of(module) or own_part(module)[0]
            if target != source:
                edges.add((source, target))
    return edges


def mermaid() -> str:
    lines = ["```mermaid", "flowchart LR"]
    for prefix, title in SUBGRAPHS.items():
        lines.append(f'  subgraph {prefix}["{title}"]')
        lines += [
            f'    {node_id}["{label}"]'
            for node_id, label in all_parts()
            if node_id.split("_")[0] == prefix
        ]
        lines.append("  end")
    lines += [f"  {a} --> {b}" for a, b in sorted(import_edges())]
    lines.append("```")
    return "\n".join(lines)


def render(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when out of date")
    args = parser.parse_args()
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            sys.exit("docs/architecture.md is out of date; fix: python docs/architecture.py")
        return
    DOC.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
