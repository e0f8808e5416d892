"""Every option of every config group of ``python -m search`` composes into a SearchConfig.

Options are listed from ``conf/<group>/*.yaml``, so a new file is covered without editing this
test. Composition uses Hydra's compose API, the same path the command line takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import get_method, instantiate
from omegaconf import OmegaConf

from search.aggregation import Aggregation
from search.config import SearchConfig, register_configs, validate
from search.generators import HF_KEYS, VLLM_KEYS, Backend
from search.protocols import ProblemSource
from search.strategies import StrategyConfig, StrategyName

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def option_yaml(group: str, name: str) -> dict:
    return yaml.safe_load((CONF_DIR / group / f"{name}.yaml").read_text())


@pytest.fixture(scope="module", autouse=True)
def hydra_conf() -> Iterator[None]:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield


def compose_search(*overrides: str) -> SearchConfig:
    raw = compose(config_name="config", overrides=list(overrides))
    config = OmegaConf.to_object(raw)
    assert isinstance(config, SearchConfig)
    return config


def test_every_group_has_options() -> None:
    assert "jsonl" in options("dataset") and "arith" in options("dataset")
    assert {"fake", "arith_tiny"} <= set(options("policy"))
    assert {"fake", "none", "arith_prm"} <= set(options("scorer"))
    assert set(options("strategy")) == {member.value for member in StrategyName}


def test_default_config_is_valid() -> None:
    config = compose_search()
    validate(config)
    assert config.strategy.name is StrategyName.best_of_n
    assert config.aggregation is Aggregation.min
    assert config.dataset["_target_"] == "search.envs.arith.world.ArithDataset"
    assert config.policy["_target_"] == "search.generators.build_generator"
    assert Backend(config.policy["backend"]) is Backend.hf
    assert config.scorer["_target_"] == "prm.scoring.build_scorer"


@pytest.mark.parametrize("name", options("dataset"))
def test_dataset_options_compose(name: str) -> None:
    overrides = [f"dataset={name}"]
    if name == "jsonl":  # its path is mandatory (???)
        overrides.append("dataset.path=x.jsonl")
    config = compose_search(*overrides)
    validate(config)
    dataset = instantiate(config.dataset)  # reads no file: loading is ``load()``
    assert isinstance(dataset, ProblemSource)
    expected = option_yaml("dataset", name)
    assert config.dataset["_target_"] == expected["_target_"]
    assert config.dataset["limit"] == expected.get("limit")
    if "path" in expected:
        assert config.dataset["path"] is not None
        assert "${" not in config.dataset["path"]  # interpolations resolved


def test_jsonl_without_path_fails() -> None:
    raw = compose(config_name="config", overrides=["dataset=jsonl"])
    with pytest.raises(Exception, match=r"dataset\.path|Missing mandatory value"):
        OmegaConf.to_object(raw)


@pytest.mark.parametrize("name", options("policy"))
def test_policy_options_compose(name: str) -> None:
    config = compose_search(f"policy={name}")
    validate(config)
    assert isinstance(config.policy, dict)
    expected = option_yaml("policy", name)
    assert config.policy == expected
    target = get_method(config.policy["_target_"])  # importable, without loading a model
    arguments = {k: v for k, v in config.policy.items() if not k.startswith("_")}
    inspect.signature(target).bind(seed=0, **arguments)  # every key is a parameter
    if "backend" in arguments:  # the shared builder: backend and sub-blocks are checked
        assert Backend(arguments["backend"]) in set(Backend)
        build_generator_options = {"hf": HF_KEYS, "vllm": VLLM_KEYS}
        for backend, allowed in build_generator_options.items():
            assert set(arguments.get(backend, {})) <= set(allowed)


@pytest.mark.parametrize("name", options("scorer"))
def test_scorer_options_compose(name: str) -> None:
    config = compose_search(f"scorer={name}")
    if name == "none":
        assert config.scorer is None
        validate(config)  # best-of-N with majority voting needs no scorer
        return
    validate(config)
    assert isinstance(config.scorer, dict)
    target = get_method(config.scorer["_target_"])  # importable, without loading a model
    arguments = {k: v for k, v in config.scorer.items() if not k.startswith("_")}
    inspect.signature(target).bind(**arguments)  # every key is a parameter of the target


@pytest.mark.parametrize("name", options("strategy"))
def test_strategy_options_compose(name: str) -> None:
    config = compose_search(f"+strategy={name}")
    validate(config)
    assert isinstance(config.strategy, StrategyConfig)
    assert config.strategy.name is StrategyName(name)
    for key, value in option_yaml("strategy", name).items():
        got = getattr(config.strategy, key)
        assert (got.value if hasattr(got, "value") else got) == value, key


@pytest.mark.parametrize("name", ["beam", "dvts", "mcts"])
def test_tree_strategies_need_a_scorer(name: str) -> None:
    config = compose_search(f"+strategy={name}", "scorer=none")
    with pytest.raises(ValueError, match="expected a scorer"):
        validate(config)


def test_overrides_are_typed() -> None:
    config = compose_search("+strategy=beam", "strategy.n=8", "aggregation=prod")
    assert config.strategy.n == 8
    assert config.aggregation is Aggregation.prod
    with pytest.raises(ConfigCompositionException):
        compose(config_name="config", overrides=["strategy.nn=3"])
    with pytest.raises(ConfigCompositionException):
        compose(config_name="config", overrides=["aggregation=median"])
