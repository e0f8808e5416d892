"""``python -m search``: the Hydra entry point of the search engine.

Examples::

    python -m search                                   # embedded default, best-of-N
    python -m search +strategy=beam strategy.n=8 aggregation=prod
    python -m search +strategy=particle_filtering            # also adaptive_best_of_n
    python -m search -m +strategy=beam strategy.n=4,8,16 aggregation=min,prod
    python -m search --config-dir MY_DIR scorer=my_prm  # a PRM of your own
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from search.components import (
    build_component,
    check_component,
    component_name,
    warn_if_world_mismatch,
)
from search.config import SearchConfig, register_configs, validate
from search.inputs import (
    InputError,
    as_input_error,
    exit_on_input_error,
    exit_on_server_error,
)
from search.protocols import Generator, ProblemSource
from search.resolve import CONF_DIR
from search.strategies.config import StrategyName
from search.types import DEFAULT_SAMPLING, Generation, Prefix, Problem, Sampling, Until

log = logging.getLogger("search")

register_configs()


def describe(
    config: SearchConfig, raw: DictConfig, dataset: ProblemSource | None = None
) -> dict[str, Any]:
    """What produced a run, for metrics.json. ``select`` names the rule whose pick is the
    prediction (a key of ``accuracy_by_rule``): ``mcts_final`` for mcts. ``policy`` and
    ``scorer`` name the models (path or hub name; a ``_target_`` for components without a
    model), ``*_backend`` their backends (``hf``/``vllm``; ``None`` where not applicable).
    ``dataset`` is the built dataset's ``name`` (without it: the node's ``name``, else its
    target)."""
    scorer = raw.get("scorer")
    strategy = config.strategy
    if strategy.name is StrategyName.mcts:
        select = strategy.mcts_final.value
    else:
        select = strategy.selection(has_scorer=config.scorer is not None).value
    return {
        "strategy": strategy.name.value,
        "n": strategy.n,
        "select": select,
        "aggregation": config.aggregation.value,
        "dataset": dataset.name if dataset is not None else component_name(raw.dataset, "name"),
        "policy": component_name(raw.policy),
        "policy_backend": raw.policy.get("backend"),
        "scorer": component_name(scorer),
        "scorer_backend": None if scorer is None else scorer.get("backend"),
        "seed": config.seed,
        "config": OmegaConf.to_container(raw, resolve=True),
    }


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_summary(metrics: dict[str, Any]) -> None:
    rows = [
        (
            "strategy",
            f"{metrics['strategy']} (n={metrics['n']}, select={metrics['select']}, "
            f"aggregation={metrics['aggregation']})",
        ),
        ("problems", str(metrics["num_problems"])),
        ("accuracy", _fraction(metrics["accuracy"])),
    ]
    for rule, value in metrics["accuracy_by_rule"].items():
        rows.append((f"  {rule}", _fraction(value)))
    rows += [
        ("pass@n", _fraction(metrics["pass_at_n"])),
        ("finished share", _fraction(metrics["finished_share"])),
        ("mean sample accuracy", _fraction(metrics["mean_sample_accuracy"])),
        ("policy tokens", str(metrics["policy_tokens"])),
        ("prm tokens", "unknown" if metrics["prm_tokens"] is None else str(metrics["prm_tokens"])),
        # every batch's time, summed over the run's invocations (and over Ray workers)
        ("search s, all batches", f"{metrics['wall_s']:.1f}"),
    ]
    if metrics.get("invocation_wall_s") is not None:
        rows.append(("wall s, this invocation", f"{metrics['invocation_wall_s']:.1f}"))
    if metrics.get("skipped_problems"):
        rows.insert(2, ("skipped: prompt too long", str(metrics["skipped_problems"])))
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(raw: DictConfig) -> None:
    with exit_on_server_error(), exit_on_input_error():
        try:
            run(raw)
        except KeyboardInterrupt:  # Ctrl-C: what is saved and how to go on, not a traceback
            stop_interrupted(Path(HydraConfig.get().runtime.output_dir))


def stop_interrupted(output_dir: Path) -> NoReturn:
    """Say how many problems an interrupted run saved and how to resume; exit 130 (SIGINT)."""
    from search.results import saved_problems

    results = output_dir / "results.jsonl"  # one line a problem; a torn last one is redone
    searched, aside = saved_problems(results)
    saved = searched + aside
    where = f"{searched} finished problems are saved in {results}" + (
        f" (and {aside} set aside as too long for the context, on_overflow=skip)" if aside else ""
    )
    print(
        f"interrupted: {where if saved else 'no problem had finished'}; re-run the same "
        "command to " + ("resume" if saved else "start again"),
        file=sys.stderr,
    )
    raise SystemExit(130)


def load_component(role: str, node: DictConfig, **kwargs: Any) -> Any:
    """Build a policy or scorer node, reporting once how long it took (a vLLM engine's
    start-up included); transformers' per-file weight bars are turned off for it."""
    model = node.get("model")
    if model is not None:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    start = time.perf_counter()
    built = build_component(role, node, **kwargs)  # e.g. a max_length above the context
    backend = node.get("backend")
    log.info(
        "%s %s%s ready in %.1f s",
        role,
        model if model is not None else component_name(node),
        "" if backend is None else f" ({backend})",
        time.perf_counter() - start,
    )
    return built


def run(raw: DictConfig) -> None:
    config: SearchConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
    validate(config)  # before any model is loaded
    config.strategy.check_fields_set(strategy_fields_set(HydraConfig.get().overrides.task))
    check_components(raw, config.seed)

    from search.results import ResultsFile
    from search.run import OnOverflow, check_same_problems, check_unique_ids, run_search
    from search.rundir import RunLock, check_fingerprint, fingerprint, schema_defaults
    from search.strategies import build_strategy

    with as_input_error("dataset"):
        dataset: ProblemSource = instantiate(raw.dataset)
        loaded = dataset.load()
    if loaded.skipped:
        log.warning("skipped %d bad rows: %s", loaded.skipped, loaded.skipped_reasons[:5])
    warn_if_world_mismatch(
        dataset.name, component_name(raw.policy), component_name(raw.get("scorer"))
    )
    if not loaded.problems:
        raise InputError(
            f"expected at least one problem from dataset {dataset.name}, got none; fix: check "
            "dataset.path, dataset.limit and the skipped rows logged above"
        )
    check_unique_ids(loaded.problems)
    check_model_paths(raw)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    with RunLock(output_dir):  # one writer; checked before any model loads
        results = ResultsFile(output_dir)
        settings = fingerprint(OmegaConf.to_container(raw, resolve=True, enum_to_str=True))  # type: ignore[arg-type]
        check_fingerprint(
            output_dir, settings, bool(results.records), defaults=schema_defaults(raw)
        )
        check_same_problems(results.records, loaded.problems)
        todo = [p for p in loaded.problems if p.id not in results.done_ids]
        if todo and config.on_overflow is OnOverflow.error:  # before any model loads, here
            check_prompts_fit(raw, todo)  # or on a Ray worker
        if config.launcher is not None:  # +launcher=ray: the workers build the models
            from search.launchers.ray import run_search_on_ray

            container = OmegaConf.to_container(raw, resolve=True)
            assert isinstance(container, dict)
            metrics = run_search_on_ray(
                loaded.problems,
                container["policy"],
                container["scorer"],
                config.strategy,
                config.aggregation,
                config.seed,
                output_dir,
                describe=describe(config, raw, dataset) | {"skipped_rows": loaded.skipped},
                launcher=config.launcher,
                batch_problems=config.batch_problems,
                grading_timeout_s=config.grading_timeout_s,
                progress=config.progress,
                checker=getattr(dataset, "checker", None),
            )
            print_summary(metrics)
            print(f"results: {output_dir}")
            return
        strategy = build_strategy(config.strategy, config.aggregation, seed=config.seed)
        if todo:
            generator: Generator = load_component("policy", raw.policy, seed=config.seed)
            scorer = None if raw.scorer is None else load_component("PRM", raw.scorer)
        else:
            log.info("every problem is already in %s: no model is loaded", results.path)
            generator, scorer = NothingLeft(), None
        metrics = run_search(
            loaded.problems,
            generator,
            scorer,
            strategy,
            output_dir,
            describe=describe(config, raw, dataset) | {"skipped_rows": loaded.skipped},
            batch_problems=config.batch_problems,
            grading_timeout_s=config.grading_timeout_s,
            progress=config.progress,
            checker=getattr(dataset, "checker", None),
            on_overflow=config.on_overflow,
        )
    print_summary(metrics)
    print(f"results: {output_dir}")


def check_prompts_fit(raw: DictConfig, problems: Sequence[Problem]) -> None:
    """``on_overflow=error``: refuse prompts longer than a local policy's context from its
    tokenizer and ``config.json``, before its weights load (a policy that cannot be measured
    so, e.g. a server's, is measured by the run once it is built)."""
    from search.generators import local_prompt_measure
    from search.run import refuse_overflows, set_aside_overflows

    container = OmegaConf.to_container(raw.policy, resolve=True)
    assert isinstance(container, dict)
    measure = local_prompt_measure({str(key): value for key, value in container.items()})
    if measure is not None:
        refuse_overflows(set_aside_overflows(problems, measure)[1])


def strategy_fields_set(overrides: Sequence[str]) -> list[str]:
    """The ``strategy`` fields a command line sets (``strategy.n=4``, ``++strategy.n=4``,
    a sweep ``strategy.n=4,8``), not those the chosen ``+strategy=`` file sets."""
    fields = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key.startswith("strategy."):
            fields.append(key.removeprefix("strategy.").split(".")[0])
    return fields


def check_components(raw: DictConfig, seed: int) -> None:
    """The dataset, policy and scorer nodes' settings (``search.components.check_component``),
    before any of them is built: a typo in ``scorer.dtype`` does not cost a policy load."""
    container = OmegaConf.to_container(raw, resolve=True)
    assert isinstance(container, dict)
    check_component("dataset", container.get("dataset"))
    check_component("policy", container.get("policy"), seed=seed)
    check_component("scorer", container.get("scorer"))


def check_model_paths(raw: DictConfig) -> None:
    """Every component's model path exists (or is a hub name), before any model loads, so
    a typo in ``scorer.model`` does not cost a policy load first. A model a server runs (an
    ``openai_server`` policy, a ``vllm_server`` scorer) is loaded here only as its tokenizer:
    ``tokenizer`` when set (``model`` is then the served name, which no folder or hub holds),
    else ``model``."""
    from search.resolve import is_served, resolve_model_path

    for role in ("policy", "scorer"):
        node = raw.get(role)
        if node is None:
            continue
        key = "tokenizer" if is_served(node) and node.get("tokenizer") is not None else "model"
        model = node.get(key)
        if model is None:
            continue
        try:
            resolve_model_path(str(model), key=f"{role}.{key}")
        except FileNotFoundError as error:
            raise InputError(f"{role}.{key}: {error}") from None


class NothingLeft:
    """The policy of a resumed run whose problems are all done: never loaded, never called."""

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        raise AssertionError("a run with no problem left generates nothing")


if __name__ == "__main__":
    main()
