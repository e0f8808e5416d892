"""benchmarks/build_prm.sh (what `make prm` runs): the recipe its knobs make, read from its
DRY_RUN listing (no stage runs), and the recipe of benchmarks/prm_rounds.sh."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "build_prm.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def dry_run(tmp_path: Path, **knobs: str) -> list[tuple[str, dict[str, str]]]:
    """Each stage's name and its command's ``key=value`` overrides."""
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("BF16", "REFINE_LRS", "STAGES")}
    env |= {"DRY_RUN": "true", "RUN": str(run), "EXPORT": str(tmp_path / "export")} | knobs
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=True
    )
    assert not run.exists()  # a dry run writes nothing
    stages = []
    for line in done.stdout.splitlines():
        found = re.fullmatch(r"DRY (\S+): (.*)", line)
        assert found, line
        overrides = dict(arg.split("=", 1) for arg in found.group(2).split() if "=" in arg)
        stages.append((found.group(1), overrides))
    return stages


def rounds_file() -> dict[str, str]:
    text = (ROOT / "benchmarks" / "prm_rounds.sh").read_text()
    values = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, flags=re.MULTILINE))
    for name in ("BF16_14_REFINE_LRS", "MAKE_PRM_REFINE_LRS"):  # in the order they are built
        for earlier in ("FLOAT32_REFINE_LRS", "BF16_14_REFINE_LRS"):
            values[name] = values[name].replace(f"${earlier}", values[earlier])
    return values


def test_make_prm_trains_its_rounds_in_bfloat16_and_exports_the_last(tmp_path: Path) -> None:
    stages = dry_run(tmp_path)
    names = [name for name, _ in stages]
    lrs = rounds_file()["MAKE_PRM_REFINE_LRS"].split()
    assert len(lrs) == 19  # twenty rounds: the first and nineteen refine rounds
    assert names == ["sample", "mc", "calculator", "consensus", "train"] + [
        f"refine{k}" for k in range(1, len(lrs) + 1)
    ]
    training = [overrides for name, overrides in stages if name.startswith(("train", "refine"))]
    assert all(o["bf16"] == "true" and o["pack"] == "true" for o in training)
    assert [o["learning_rate"] for o in training] == ["0.002", *lrs]
    exports = [o["export_dir"] for o in training]
    assert exports == ["null"] * (len(training) - 1) + [str(tmp_path / "export")]
    # each round continues the one before
    inits = [o["init_checkpoint"] for o in training[1:]]
    assert inits == [str(tmp_path / "run" / "model")] + [
        str(tmp_path / "run" / f"refine{k}") for k in range(1, len(lrs))
    ]


def test_the_recipes_before_are_one_setting_away(tmp_path: Path) -> None:
    rounds = rounds_file()
    float32, bf16_14 = rounds["FLOAT32_REFINE_LRS"], rounds["BF16_14_REFINE_LRS"]
    assert len(bf16_14.split()) == 13 and bf16_14.startswith(float32 + " ")
    assert rounds["MAKE_PRM_REFINE_LRS"].startswith(bf16_14 + " ")
    stages = dry_run(tmp_path, BF16="false", REFINE_LRS=float32, STAGES="train")
    assert [name for name, _ in stages] == ["train"] + [f"refine{k}" for k in range(1, 10)]
    assert all(overrides["bf16"] == "false" for _, overrides in stages)


def test_a_bad_knob_is_refused_before_anything_runs(tmp_path: Path) -> None:
    for knob, value in (("DRY_RUN", "yes"), ("STAGES", "label")):
        env = os.environ | {"DRY_RUN": "false", "RUN": str(tmp_path / "run"), knob: value}
        done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
        assert done.returncode == 2 and f"got {knob}={value}" in done.stderr, done.stderr
        assert not (tmp_path / "run").exists()
