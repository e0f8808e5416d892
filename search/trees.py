"""Search trees on disk, annotated and drawn.

``annotate`` adds to a saved tree (``SearchResult.tree``, node-link data) what is known about
each node once the problem is graded: ``path_answer`` (the answer written along the path, if
any: boxed, or read as a candidate's answer once the policy ended the path),
``answer_correct`` (the grader's verdict on it), ``steps_correct`` (the step checker's
verdict that no step of the path is wrong, where the dataset has a checker, else ``None``)
and ``chosen`` (on the path of the candidate the run picked). ``render`` draws a tree: nodes
coloured by the PRM's aggregated score, a check or a cross for the grader's verdict on an
answer, a violet ring where the checker finds a wrong step, the chosen path in bold::

    python -m search.trees render RUN_DIR/trees/ID.json          # writes RUN_DIR/trees/ID.png
    python -m search.trees render RUN_DIR/trees --out pictures/  # every tree of a run
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from search.answers import extract_answer
from search.grading import answers_match
from search.protocols import Checker
from search.strategies.tree import load_tree
from search.types import STEP_SEPARATOR, Candidate, Problem, split_steps

log = logging.getLogger(__name__)


def _path_steps(data: dict[str, Any]) -> dict[int, tuple[str, ...]]:
    """Every node's steps from the root (the root's own ``step`` is the question)."""
    parent = {link["target"]: link["source"] for link in data["links"]}
    own = {node["id"]: node for node in data["nodes"]}
    steps: dict[int, tuple[str, ...]] = {}

    def of(node_id: int) -> tuple[str, ...]:
        if node_id not in steps:
            if node_id not in parent:
                steps[node_id] = ()
            else:
                steps[node_id] = of(parent[node_id]) + split_steps(own[node_id]["step"])
        return steps[node_id]

    for node_id in own:
        of(node_id)
    return steps


def chosen_candidate(candidates: Sequence[Candidate], prediction: str | None) -> Candidate | None:
    """The candidate behind the run's pick: the highest-scoring one with the predicted answer
    (the first one when there are no scores)."""
    if prediction is None:
        return None
    matching = [c for c in candidates if c.answer == prediction]
    if not matching:
        return None
    return max(matching, key=lambda c: -1.0 if c.score is None else c.score)


def annotate(
    data: dict[str, Any],
    problem: Problem,
    chosen: Candidate | None,
    checker: Checker | None = None,
    grading_timeout_s: float = 5.0,
) -> dict[str, Any]:
    """``data`` with the per-node verdicts of the module docstring (changed in place)."""
    paths = _path_steps(data)
    chosen_ids: set[int] = set()
    if chosen is not None:
        parent = {link["target"]: link["source"] for link in data["links"]}
        ends = [i for i, steps in paths.items() if steps == chosen.steps]
        node_id: int | None = ends[0] if ends else None
        while node_id is not None:
            chosen_ids.add(node_id)
            node_id = parent.get(node_id)
    for node in data["nodes"]:
        steps = paths[node["id"]]
        # an intermediate node has an answer only if it wrote one (\boxed); a finished one is
        # read as its candidate is (the last number as a fallback)
        finished = bool(node.get("finished"))
        text = STEP_SEPARATOR.join(steps)
        answer = extract_answer(text, fallback_last_number=finished) if steps else None
        node["path_answer"] = answer
        node["answer_correct"] = (
            None
            if answer is None
            else answers_match(answer, problem.answer, timeout_s=grading_timeout_s)
        )
        node["steps_correct"] = None
        if checker is not None and steps:  # stopping before the answer is no wrong step yet
            first_error = checker.check(problem, steps).first_error
            node["steps_correct"] = first_error == -1 or first_error >= len(steps)
        node["chosen"] = node["id"] in chosen_ids
    return data


def _layout(graph: nx.DiGraph) -> dict[int, tuple[float, float]]:
    """Leaves on consecutive columns, each parent above the middle of its children."""
    positions: dict[int, tuple[float, float]] = {}
    next_column = [0.0]

    def place(node: int, depth: int) -> float:
        children = sorted(graph.successors(node))
        if not children:
            x = next_column[0]
            next_column[0] += 1.0
        else:
            xs = [place(child, depth + 1) for child in children]
            x = (min(xs) + max(xs)) / 2
        positions[node] = (x, -float(depth))
        return x

    roots = [n for n in graph.nodes if graph.in_degree(n) == 0]
    for root in sorted(roots):
        place(root, 0)
    return positions


def render(path: Path, out: Path | None = None) -> Path:
    """Draw the tree saved at ``path`` into a PNG (default: beside it); return the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    graph = load_tree(path)
    positions = _layout(graph)
    width = max(x for x, _ in positions.values()) + 1
    depth = -min(y for _, y in positions.values()) + 1
    fig, ax = plt.subplots(figsize=(min(40.0, 2 + 0.45 * width), min(30.0, 1.5 + 1.1 * depth)))
    chosen = {n for n, attrs in graph.nodes(data=True) if attrs.get("chosen")}
    for source, target in graph.edges:
        on_path = source in chosen and target in chosen
        (x0, y0), (x1, y1) = positions[source], positions[target]
        ax.plot(
            [x0, x1],
            [y0, y1],
            color="black" if on_path else "0.7",
            linewidth=2.5 if on_path else 0.8,
            zorder=1,
        )
    colours = colormaps["RdYlGn"]
    scale = Normalize(0.0, 1.0)
    for node, attrs in graph.nodes(data=True):
        x, y = positions[node]
        score = attrs.get("score")
        face = "0.85" if score is None else colours(scale(score))
        wrong_step = attrs.get("steps_correct") is False
        ax.scatter(
            [x],
            [y],
            s=160 if node in chosen else 90,
            c=[face],
            edgecolors="darkviolet" if wrong_step else "black",
            linewidths=2.5 if wrong_step else 0.6,
            zorder=2,
        )
        verdict = attrs.get("answer_correct")
        if verdict is not None:
            ax.annotate(
                "\u2713" if verdict else "\u2717",
                (x, y),
                xytext=(0, -13),
                textcoords="offset points",
                ha="center",
                fontsize=9,
                color="green" if verdict else "red",
            )
    mappable = plt.cm.ScalarMappable(norm=scale, cmap=colours)
    fig.colorbar(mappable, ax=ax, fraction=0.03, label="PRM score (aggregated, the path)")
    question = str(graph.graph.get("question", ""))
    title = f"{graph.graph.get('problem_id', path.stem)}: {question[:90]}"
    ax.set_title(
        title + "\n\u2713/\u2717 grader on the path's answer, violet ring: a wrong step (checker), "
        "bold: the chosen path",
        fontsize=9,
    )
    ax.set_axis_off()
    fig.tight_layout()
    target = out if out is not None else path.with_suffix(".png")
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def main(argv: Sequence[str] | None = None) -> None:
    """argparse, not Hydra: it reads tree files given on the command line and composes no
    config groups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    draw = commands.add_parser("render", help="draw trees as PNG")
    draw.add_argument("paths", nargs="+", type=Path, help="tree JSON files or trees/ folders")
    draw.add_argument("--out", type=Path, default=None, help="folder for the PNGs")
    args = parser.parse_args(argv)
    files: list[Path] = []
    for path in args.paths:
        if path.is_dir() and (path / "results.jsonl").exists():  # a run directory
            if not (path / "trees").is_dir():
                parser.error(
                    f"expected tree files, got the run directory {path}, which saved none; "
                    "fix: run it again into a new directory (hydra.run.dir=NEW) with "
                    "strategy.save_trees=true (beam, dvts, mcts or particle_filtering), then "
                    "pass NEW/trees (the same directory would resume it: nothing left to run)"
                )
            path = path / "trees"
        if path.is_dir():
            files += sorted(path.glob("*.json"))
        elif path.exists():
            files.append(path)
        else:
            parser.error(
                f"no such tree file or folder: {path}; fix: run with strategy.save_trees=true "
                "and pass RUN_DIR/trees or one of its files"
            )
    if not files:
        parser.error("no tree files found; fix: run with strategy.save_trees=true first")
    for file in files:
        out = None if args.out is None else args.out / file.with_suffix(".png").name
        print(render(file, out))


if __name__ == "__main__":
    main()
