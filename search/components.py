"""Helpers for components built from ``_target_`` config nodes (datasets, policies, scorers):
the backend sub-blocks (``policy.hf``, ``scorer.vllm``...), a component's name for
provenance, the check of a node's settings before anything is built (``check_component``),
and the warning when an embedded arithmetic model meets another dataset. Plain mappings in,
no Hydra."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar


def backend_options(
    component: str, backend: str, given: Mapping[str, Any] | None, allowed: tuple[str, ...]
) -> dict[str, Any]:
    """The ``component.backend`` sub-block of a config (``policy.hf``, ``scorer.vllm``...) as
    keyword arguments; an unknown key is an error naming it."""
    options = dict(given or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"expected {component}.{backend} options among {list(allowed)}, got unknown "
            f"{unknown}; fix: check the spelling under {component}.{backend}"
        )
    return options


def component_name(node: Mapping[str, Any] | None, key: str = "model") -> str | None:
    """What a ``_target_`` node builds, for provenance: its ``key`` (the model), else its
    target."""
    if node is None:
        return None
    value = node.get(key)
    return str(value) if value is not None else str(node.get("_target_"))


_HYDRA_KEYS = ("_target_", "_args_", "_recursive_", "_convert_", "_partial_")


def locate(path: str) -> Any:
    """The object a dotted ``path`` names (``package.module.name``, or a class attribute).
    ``ImportError`` / ``AttributeError`` when the path names nothing; an error raised while
    one of its modules is imported (a missing dependency, a bug) propagates as it is."""
    import importlib

    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            found: Any = importlib.import_module(module)
        except ModuleNotFoundError as error:
            missing = error.name or ""
            if module == missing or module.startswith(missing + "."):
                continue  # this prefix is not a module: try a shorter one
            raise
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(f"no module found for {path!r}")


F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=Enum)


def enum_setting(kind: type[E], value: Any, key: str, fix: str) -> E:
    """``value`` as a member of ``kind``; else a ValueError naming ``key``, the choices and
    ``fix`` (e.g. ``scorer.backend=hf``)."""
    try:
        return kind(value)
    except ValueError:
        choices = [member.value for member in kind]
        raise ValueError(f"expected {key} in {choices}, got {value!r}; fix: {fix}") from None


def int_setting(value: Any, key: str, least: int, fix: str, note: str = "") -> int:
    """``value`` if it is an integer (not a boolean) of at least ``least``; else a ValueError
    naming ``key`` (``note`` after the bound, e.g. ``" or null"``) and ``fix``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"expected {key} >= {least}{note}, got {value!r}; fix: {fix}")
    return value


def checks_settings_with(check: Callable[..., object]) -> Callable[[F], F]:
    """Decorate a component factory with ``check``, which takes the same keyword arguments,
    builds nothing and raises ValueError naming the setting and the fix; ``check_component``
    runs it before anything loads (``build_generator``, ``build_scorer``, or a factory of
    your own)."""

    def attach(factory: F) -> F:
        factory.check_settings = check  # type: ignore[attr-defined]
        return factory

    return attach


def build_component(role: str, node: Any, **given: Any) -> Any:
    """Build a ``_target_`` node (``instantiate(node, **given)``; ``given``: what the entry
    point adds, e.g. the seed). A problem with the user's input raised while it builds (an
    ``InputError``, or a check naming its fix, e.g. a constructor's bound) comes out as one
    ``InputError`` naming ``role`` (``search.inputs.input_errors_unwrapped``), not in Hydra's
    wrapper; a bug keeps its traceback."""
    from hydra.utils import instantiate

    from search.inputs import input_errors_unwrapped

    with input_errors_unwrapped(role):
        return instantiate(node, **given)


def check_component(role: str, node: Mapping[str, Any] | None, **given: Any) -> None:
    """Check a ``_target_`` node (``policy``, ``scorer``) before any model loads: its target
    imports, every key is a parameter of it, a factory's ``check_settings``
    (``checks_settings_with``) accepts the values, and a local checkpoint that one of this
    project's loaders will read holds what the role needs (``search.resolve.check_checkpoint``;
    a class of your own reads its ``model`` its own way). ``given``: what the entry point adds when
    it builds the node (the seed). Raises ``InputError`` naming ``role`` and the fix."""
    import inspect

    from search.inputs import InputError

    if node is None:
        return
    target = node.get("_target_")
    if not isinstance(target, str):
        raise InputError(
            f"expected {role}._target_ (the class or function that builds the {role}), got "
            f"{target!r}; fix: {role}=<a file of conf/{role}> or set {role}._target_"
        )
    try:
        built = locate(target)
    except (ImportError, AttributeError) as error:
        raise InputError(
            f"expected {role}._target_ to name an importable class or function, got {target!r} "
            f"({error}); fix: check its spelling and that its package is installed; a module "
            f"of your own must be importable: run from its folder, or PYTHONPATH=ITS_FOLDER"
        ) from None
    settings = {key: value for key, value in node.items() if key not in _HYDRA_KEYS} | given
    check = getattr(built, "check_settings", None)  # it lists the factory's keywords
    parameters = inspect.signature(check or built).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(settings) - set(parameters))
        if unknown:
            known = sorted(name for name in parameters if name not in given)
            raise InputError(
                f"expected {role} settings among {known} ({target}), got unknown "
                f"{[f'{role}.{key}' for key in unknown]}; fix: check their spelling, or drop them"
            )
    if check is not None:
        try:
            check(**settings)
        except (ValueError, TypeError) as error:
            message = str(error)
            raise InputError(message if f"{role}." in message else f"{role}: {message}") from None
    if target.startswith(("search.", "prm.")) and "model" in settings:  # our loaders' models
        from search.resolve import check_checkpoint

        check_checkpoint(role, settings, causal_lm=role == "policy")


def is_arith_model(model: str | None) -> bool:
    """Whether ``model`` is one of the embedded arithmetic checkpoints (``checkpoints/arith-*``)."""
    return model is not None and Path(model).name.startswith("arith-")


def is_arith_dataset(name: str) -> bool:
    """Whether a dataset (or a ProcessBench subset) is of the arithmetic world: ``arith``, or
    ``arith_*`` (its splits and ``search.envs.arith.export``'s subsets)."""
    return name == "arith" or name.startswith("arith_")


def warn_if_world_mismatch(
    dataset: str,
    policy: str | None,
    scorer: str | None,
    arith_fix: str = "dataset=arith",
) -> list[str]:
    """Warn (and return the warnings) when an embedded model, trained on the arithmetic world
    only (``checkpoints/arith-*``), is run on another dataset: it scores about 0 there.
    ``arith_fix``: how the caller's command runs on the arithmetic world instead."""
    if is_arith_dataset(dataset):
        return []
    warnings = []
    choices = (
        ("policy", policy, "policy=qwen25_math_1_5b_instruct"),
        ("PRM", scorer, "scorer=qwen25_math_prm_7b"),
    )
    for role, model, example in choices:
        if is_arith_model(model):
            warnings.append(
                f"the {role} {model} was trained on the arithmetic world only; on dataset "
                f"{dataset} expect accuracy near 0; fix: a model for the dataset (e.g. "
                f"{example}, GPU), or {arith_fix}"
            )
    for warning in warnings:
        logging.getLogger("search").warning(warning)
    return warnings
