"""``conf/experiment/``: the paper's settings compose, on MATH-500 and on GSM8K, into the
models, budget and aggregation the paper uses (arXiv 2501.07301)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from search.aggregation import Aggregation
from search.config import SearchConfig, register_configs, validate
from search.strategies import StrategyName
from search.strategies.config import Select

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def hydra_conf() -> Iterator[None]:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield


def test_the_papers_two_settings_are_there() -> None:
    assert {"paper_best_of_8", "paper_greedy"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("dataset", ["math500", "gsm8k"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_with_the_papers_models(experiment: str, dataset: str) -> None:
    overrides = [f"+experiment={experiment}"] + (
        [] if dataset == "math500" else [f"dataset={dataset}"]
    )
    raw = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    assert raw.hydra.job.name == experiment
    with open_dict(raw):
        del raw["hydra"]
    config = OmegaConf.to_object(raw)
    assert isinstance(config, SearchConfig)
    validate(config)
    assert config.dataset["name"] == dataset  # a _target_ node (search.data.DatasetConfig)
    assert config.policy["model"] == "Qwen/Qwen2.5-Math-7B-Instruct"
    assert config.scorer is not None and config.scorer["model"] == "Qwen/Qwen2.5-Math-PRM-7B"
    assert config.aggregation is Aggregation.prod
    assert config.strategy.n == 8 and config.strategy.select is Select.prm
    if experiment == "paper_greedy":  # one kept beam, 8 children per step
        assert config.strategy.name is StrategyName.beam
        assert config.strategy.beam_width == config.strategy.n
        assert config.strategy.prune is Select.prm  # the best-scored step, not pooled scores
    else:
        assert config.strategy.name is StrategyName.best_of_n
