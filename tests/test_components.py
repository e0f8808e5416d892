"""``check_component``: a ``_target_`` node's settings checked before anything is built."""

from __future__ import annotations

from typing import Any

import pytest

from search.components import check_component, locate
from search.inputs import InputError


class Mine:
    def __init__(self, model: str, seed: int = 0) -> None:
        raise AssertionError("a check builds nothing")


class Open:
    def __init__(self, **options: Any) -> None:
        raise AssertionError("a check builds nothing")


def test_locate_finds_functions_classes_and_re_exports() -> None:
    assert locate("search.components.check_component") is check_component
    assert locate("prm.scoring.build_scorer") is locate("prm.scoring.factory.build_scorer")
    with pytest.raises(AttributeError):
        locate("search.components.nothing_here")


def test_unknown_keys_are_refused_and_known_ones_build_nothing() -> None:
    node = {"_target_": f"{__name__}.Mine", "model": "m"}
    check_component("policy", node, seed=1)  # the seed the entry point adds is known
    with pytest.raises(InputError, match=r"among \['model'\].*unknown \['policy\.sede'\]; fix"):
        check_component("policy", {**node, "sede": 1}, seed=1)
    check_component("scorer", {"_target_": f"{__name__}.Open", "anything": 1})  # **options


def test_a_target_that_does_not_import_is_refused() -> None:
    with pytest.raises(InputError, match=r"scorer\._target_ .*'nowhere\.Scorer'.*fix"):
        check_component("scorer", {"_target_": "nowhere.Scorer"})
    with pytest.raises(InputError, match=r"expected scorer\._target_"):
        check_component("scorer", {"model": "m"})


def test_the_project_factories_check_their_values() -> None:
    scorer = {"_target_": "prm.scoring.build_scorer", "model": "checkpoints/arith-prm"}
    check_component("scorer", scorer)
    with pytest.raises(InputError, match=r"expected scorer\.on_overflow in .*fix"):
        check_component("scorer", {**scorer, "on_overflow": "skip"})
    policy = {"_target_": "search.generators.build_generator", "model": "checkpoints/x"}
    with pytest.raises(InputError, match=r"expected policy\.hf\.kv_cache in .*fix"):
        check_component("policy", {**policy, "hf": {"kv_cache": "static"}}, seed=0)
    with pytest.raises(InputError, match=r"^expected 0 < top_p <= 1, got 0.0; fix: policy\.top_p"):
        check_component("policy", {**policy, "top_p": 0.0}, seed=0)


def test_a_target_that_does_not_import_names_how_to_make_your_module_importable() -> None:
    with pytest.raises(InputError, match=r"scorer\._target_ .*'length_penalty\.Scorer'.*"
                       r"run from its folder, or PYTHONPATH=ITS_FOLDER"):  # fmt: skip
        check_component("scorer", {"_target_": "length_penalty.Scorer"})
