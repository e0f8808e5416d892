"""search.trees: per-node verdicts in a saved tree, the chosen path, and the picture; and
prm.curve, the PRM training curve beside its log."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from prm.curve import plot_training_curve
from search.envs.arith.checker import ArithChecker
from search.trees import annotate, chosen_candidate, main, render
from search.types import Candidate, FinishReason, Problem

PROBLEM = Problem("p", "Compute 7 + 5 - 3.", "9")


def _tree() -> dict:
    """Root, two first steps (one wrong), the right branch finished with the answer."""
    graph = nx.DiGraph(problem_id="p", question=PROBLEM.question)
    rows = [
        (0, None, PROBLEM.question, None, None),
        (1, 0, "7 + 5 = 12", "step", 0.9),
        (2, 0, "7 + 5 = 13", "step", 0.2),
        (3, 1, "12 - 3 = 9", "step", 0.8),
        (4, 3, "The answer is \\boxed{9}.", "eos", 0.8),
        (5, 2, "13 - 3 = 10", "step", 0.1),
    ]
    for node, parent, step, reason, score in rows:
        graph.add_node(node, step=step, finish_reason=reason, finished=reason == "eos", score=score)
        if parent is not None:
            graph.add_edge(parent, node)
    data: dict = nx.node_link_data(graph, edges="links")
    return data


def test_annotate_marks_verdicts_and_the_chosen_path() -> None:
    steps = ("7 + 5 = 12", "12 - 3 = 9", "The answer is \\boxed{9}.")
    chosen = chosen_candidate(
        [
            Candidate(steps, True, 30, "9", score=0.8, finish_reason=FinishReason.eos),
            Candidate(("7 + 5 = 13", "13 - 3 = 10"), False, 20, "10", score=0.1),
        ],
        "9",
    )
    assert chosen is not None and chosen.steps == steps
    nodes = {n["id"]: n for n in annotate(_tree(), PROBLEM, chosen, ArithChecker())["nodes"]}
    assert [i for i, n in nodes.items() if n["chosen"]] == [0, 1, 3, 4]
    assert nodes[4]["path_answer"] == "9" and nodes[4]["answer_correct"] is True
    assert nodes[3]["path_answer"] is None  # no answer written yet: no verdict
    assert nodes[1]["steps_correct"] is True and nodes[3]["steps_correct"] is True
    assert nodes[2]["steps_correct"] is False and nodes[5]["steps_correct"] is False
    assert nodes[0]["steps_correct"] is None
    without = {n["id"]: n for n in annotate(_tree(), PROBLEM, None)["nodes"]}
    assert all(n["steps_correct"] is None and not n["chosen"] for n in without.values())


def test_render_and_its_cli_write_pngs(tmp_path: Path) -> None:
    trees = tmp_path / "trees"
    trees.mkdir()
    path = trees / "p.json"
    path.write_text(json.dumps(annotate(_tree(), PROBLEM, None, ArithChecker())))
    picture = render(path)
    assert picture == trees / "p.png" and picture.stat().st_size > 5000
    main(["render", str(trees), "--out", str(tmp_path / "pictures")])
    assert (tmp_path / "pictures" / "p.png").exists()
    with pytest.raises(SystemExit):
        main(["render", str(tmp_path / "missing.json")])
    # a run directory: its trees/ folder is drawn (not its metrics.json read as a tree)
    (tmp_path / "results.jsonl").write_text("")
    (tmp_path / "metrics.json").write_text("{}")
    main(["render", str(tmp_path), "--out", str(tmp_path / "from-run")])
    assert (tmp_path / "from-run" / "p.png").exists()


def test_a_run_directory_without_trees_is_one_line_naming_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "results.jsonl").write_text("")
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(SystemExit):
        main(["render", str(tmp_path)])
    err = capsys.readouterr().err
    assert "which saved none; fix: run it again into a new directory (hydra.run.dir=NEW)" in err


def test_training_curve_png_beside_its_log(tmp_path: Path) -> None:
    history = [
        {"step": s, "train_loss": 1 / s, "val_loss": 2 / s, "val_f1": 0.5, "epoch": 1}
        for s in (10, 20, 30)
    ]
    log = tmp_path / "training_log.json"
    log.write_text(json.dumps({"num_train": 5, "history": history}))
    assert plot_training_curve(log).stat().st_size > 5000
    assert (tmp_path / "training_curve.png").exists()
    log.write_text(json.dumps({"history": []}))
    with pytest.raises(ValueError, match="fix"):
        plot_training_curve(log)
