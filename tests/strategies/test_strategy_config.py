"""StrategyConfig: cross-field checks with expected/got/fix messages, the yaml group, dispatch."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from search.aggregation import Aggregation
from search.strategies import (
    AdaptiveBestOfN,
    BeamSearch,
    BestOfN,
    Dvts,
    Mcts,
    ParticleFilter,
    Select,
    StrategyConfig,
    StrategyName,
    build_strategy,
)
from search.strategies.config import FIELDS_READ

CONF = Path(__file__).resolve().parents[2] / "conf" / "strategy"


@pytest.mark.parametrize("name", ["beam", "dvts"])
def test_n_must_be_a_multiple_of_beam_width(name: str) -> None:
    with pytest.raises(
        ValueError, match=r"multiple of strategy.beam_width.*n=10.*fix: strategy.n=8"
    ):
        StrategyConfig(name=StrategyName(name), n=10, beam_width=4)


def test_mcts_needs_a_tree_that_can_hold_n_paths() -> None:
    with pytest.raises(ValueError, match=r"got 4 \* 2 < 16; fix: strategy.num_simulations=8"):
        StrategyConfig(name=StrategyName.mcts, n=16, num_simulations=4, children_per_expansion=2)
    StrategyConfig(name=StrategyName.mcts, n=16, num_simulations=8, children_per_expansion=2)
    StrategyConfig(name=StrategyName.best_of_n, n=16, num_simulations=4)  # not read there


def test_best_of_n_and_mcts_ignore_beam_width() -> None:
    for name in (StrategyName.best_of_n, StrategyName.mcts):  # n=10 is no multiple of 4
        config = StrategyConfig(name=name, n=10, beam_width=4)
        assert (config.n, config.beam_width) == (10, 4)
        assert "beam_width" not in FIELDS_READ[name]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 0),
        ("beam_width", 0),
        ("max_steps", 0),
        ("batch_size", 0),
        ("num_simulations", 0),
        ("children_per_expansion", 0),
        ("lookahead", -1),
        ("lookahead_temperature", -0.5),
        ("c_puct", -0.5),
    ],
)
def test_ranges(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"strategy.{field}.*got {value}.*fix"):
        StrategyConfig(**{field: value})  # type: ignore[arg-type]


def test_validate_changes_made_after_construction() -> None:
    config = StrategyConfig(name=StrategyName.beam, n=8, beam_width=4)
    config.n = 6  # as a Hydra override or a user in Python would
    with pytest.raises(ValueError, match="multiple"):
        config.validate(has_scorer=True)


@pytest.mark.parametrize("name", ["beam", "dvts", "mcts"])
def test_tree_strategies_need_a_scorer(name: str) -> None:
    config = StrategyConfig(name=StrategyName(name), n=4, beam_width=2)
    config.validate(has_scorer=True)
    with pytest.raises(
        ValueError, match=rf"scorer \(PRM\) for strategy {name}.*fix: choose scorer="
    ):
        config.validate(has_scorer=False)


@pytest.mark.parametrize("select", ["prm", "weighted"])
def test_scored_selection_needs_a_scorer(select: str) -> None:
    config = StrategyConfig(select=Select(select))
    with pytest.raises(ValueError, match=r"fix: choose scorer=\.\.\. or strategy\.select=majority"):
        config.validate(has_scorer=False)


def test_default_selection_follows_the_scorer() -> None:
    config = StrategyConfig()
    config.validate(has_scorer=False)
    assert config.selection(has_scorer=False) is Select.majority
    assert config.selection(has_scorer=True) is Select.weighted
    assert StrategyConfig(select=Select.prm).selection(has_scorer=True) is Select.prm


def test_lookahead_only_for_beam_and_dvts() -> None:
    StrategyConfig(name=StrategyName.dvts, n=4, beam_width=2, lookahead=2)
    with pytest.raises(ValueError, match="lookahead applies to beam and dvts only"):
        StrategyConfig(name=StrategyName.mcts, lookahead=1)


def test_strings_become_enums() -> None:
    config = StrategyConfig(name="beam", select="majority", n=4, beam_width=2)  # type: ignore[arg-type]
    assert config.name is StrategyName.beam and config.select is Select.majority


@pytest.mark.parametrize("name", [member.value for member in StrategyName])
def test_yaml_merges_over_the_schema(name: str) -> None:
    """Every key of conf/strategy/<name>.yaml is a StrategyConfig field, and the merged
    config builds the strategy it names (what `strategy=<name>` does in Hydra)."""
    path = CONF / f"{name}.yaml"
    loaded = OmegaConf.load(path)
    assert set(loaded.keys()) <= {f.name for f in fields(StrategyConfig)}
    merged = OmegaConf.merge(OmegaConf.structured(StrategyConfig), loaded)
    config = OmegaConf.to_object(merged)
    assert isinstance(config, StrategyConfig)
    assert config.name is StrategyName(name)
    expected = {
        "best_of_n": BestOfN,
        "beam": BeamSearch,
        "dvts": Dvts,
        "mcts": Mcts,
        "particle_filtering": ParticleFilter,
        "adaptive_best_of_n": AdaptiveBestOfN,
    }[name]
    assert isinstance(build_strategy(config, Aggregation.min), expected)


def test_hydra_style_override_of_an_enum() -> None:
    merged = OmegaConf.merge(
        OmegaConf.structured(StrategyConfig),
        OmegaConf.from_dotlist(["name=dvts", "select=weighted", "n=8", "beam_width=2"]),
    )
    config = OmegaConf.to_object(merged)
    assert isinstance(config, StrategyConfig)
    assert (config.name, config.select) == (StrategyName.dvts, Select.weighted)
    with pytest.raises(Exception, match="best_of_n"):  # omegaconf lists the valid members
        OmegaConf.merge(OmegaConf.structured(StrategyConfig), {"name": "beamsearch"})


def test_a_field_the_strategy_does_not_read_is_refused_naming_who_reads_it() -> None:
    from search.__main__ import strategy_fields_set
    from search.inputs import InputError

    fields = strategy_fields_set(
        ["+strategy=beam", "strategy.n=4,8", "++strategy.beam_width=2", "aggregation=min"]
    )
    assert fields == ["n", "beam_width"]
    StrategyConfig(name=StrategyName.beam).check_fields_set(fields)  # beam reads both
    with pytest.raises(InputError, match=r"strategy\.beam_width, read only by beam and dvts"):
        StrategyConfig().check_fields_set(fields)
    with pytest.raises(InputError, match=r"fix: strategy\.mcts_final=best_value"):
        StrategyConfig(name=StrategyName.mcts).check_fields_set(["select"])
    for name, read in FIELDS_READ.items():  # every field a strategy reads is one of the schema
        assert set(read) <= set(StrategyConfig.__dataclass_fields__), name


class _Reads(StrategyConfig):
    """A config that notes which of its fields are read."""

    def __getattribute__(self, name: str) -> object:
        notes = object.__getattribute__(self, "__dict__")
        if name in StrategyConfig.__dataclass_fields__ and not notes.get("_checking"):
            notes.setdefault("_read", set()).add(name)
        return object.__getattribute__(self, name)

    def validate(self, has_scorer: bool) -> None:  # checking every field is not using it
        notes = object.__getattribute__(self, "__dict__")
        notes["_checking"] = True
        try:
            super().validate(has_scorer)
        finally:
            notes["_checking"] = False


@pytest.mark.parametrize("name", list(StrategyName))
def test_fields_read_holds_every_field_a_strategy_reads(name: StrategyName, tmp_path: Path) -> None:
    """Each strategy run end to end (fake models, lookahead and trees on where they apply)
    reads no field outside FIELDS_READ: the refusal of unread fields cannot drift from the
    code."""
    from search.envs.arith.fakes import FakeGenerator, FakeScorer
    from search.envs.arith.world import make_split
    from search.run import run_search

    width = name in (StrategyName.beam, StrategyName.dvts)
    config = _Reads(
        name=name,
        n=4,
        beam_width=2,
        lookahead=1 if width else 0,
        num_simulations=4,
        children_per_expansion=2,
        save_trees="save_trees" in FIELDS_READ[name],
    )
    object.__getattribute__(config, "__dict__")["_read"] = set()  # construction is not use
    run_search(
        make_split("test", size=3),
        FakeGenerator(),
        FakeScorer(),
        build_strategy(config, Aggregation.min),
        tmp_path,
        describe={},
    )
    read = object.__getattribute__(config, "__dict__")["_read"]
    assert read <= {"name", "n", "batch_size", *FIELDS_READ[name]}
    assert "n" in read
