"""``build_scorer``: one entry point for every PRM config (``conf/scorer/*.yaml``).

The format keys (family, tag, layout) and the common keys are flat; what only one backend
understands sits under ``hf:`` or ``vllm:``, so switching backend is one override::

    python -m search scorer=qwen25_math_prm_7b scorer.backend=vllm
    python -m search scorer=arith_prm scorer.vllm.reuse_prefix_cache=false scorer.backend=vllm
"""

from __future__ import annotations

import functools
import json
import logging
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from prm.scoring.base import StepTagScorer
from prm.scoring.encoding import OverflowPolicy, PrefixEncoder, resolve_max_length
from prm.scoring.format import PRMFamily, PRMFormat, TokenIds, resolve_token_ids
from search.components import (
    backend_options,
    checks_settings_with,
    enum_setting,
    int_setting,
)
from search.inputs import InputError
from search.prompting import DEFAULT_SYSTEM_PROMPT, PLAIN_TEMPLATE
from search.resolve import check_dtype, local_json, local_model_dir

log = logging.getLogger(__name__)


class Backend(str, Enum):
    hf = "hf"
    vllm = "vllm"
    vllm_server = "vllm_server"  # a running vLLM server's /pooling endpoint (base_url)


# the transformers classes an hf scorer may load its checkpoint as (scorer.hf.auto_class)
AUTO_CLASSES = ("AutoModelForTokenClassification", "AutoModelForCausalLM", "AutoModel")
_HF_KEYS = (
    "batch_size",
    "device",
    "device_map",
    "auto_class",
    "reuse_prefix_cache",
    "prefix_cache_tokens",
)
_VLLM_KEYS = (
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "block_size",
    "enforce_eager",
    "reuse_prefix_cache",
    "kv_cache_space_gib",
    "seed",
)
_SERVER_KEYS = (
    "served_model_name",
    "batch_size",
    "api_key_env",
    "timeout_s",
    "connect_timeout_s",
    "max_concurrency",
    "max_retries",
)


def trusts_remote_code(model: str, trust: bool | None, remote_code_for: str | None) -> bool:
    """Whether ``model``'s remote code runs: ``trust`` when set, else only for the model the
    config names (``remote_code_for``)."""
    if trust is not None:
        return trust
    return remote_code_for is not None and model == remote_code_for


def resolve_trust(model: str, trust: bool | None, remote_code_for: str | None) -> bool:
    """Whether to run ``model``'s remote code (see ``build_scorer``), saying so when a config
    that trusts another model's code declines this one's."""
    if trust is not None or trusts_remote_code(model, trust, remote_code_for):
        return trusts_remote_code(model, trust, remote_code_for)
    config = local_json(model, "config.json")
    if remote_code_for is not None and (config is None or "auto_map" in config):
        # a local checkpoint without auto_map is a transformers class: no remote code to run
        log.warning(
            "not running remote code for %s: this config trusts it for %s only; fix: "
            "scorer.trust_remote_code=true if you trust %s's code",
            model,
            remote_code_for,
            model,
        )
    return False


@dataclass(frozen=True)
class ScorerPlan:
    """A PRM's settings, checked, before anything loads (``scorer_plan``)."""

    model: str
    backend: Backend
    fmt: PRMFormat
    common: dict[str, Any]
    options: dict[str, Any]  # the chosen backend's own
    remote_code_for: str | None
    base_url: str | None


def scorer_plan(
    model: str,
    backend: Backend | str = Backend.hf,
    *,
    family: PRMFamily | str = PRMFamily.token_classification,
    step_tag: str = "<step>",
    use_chat_template: bool = False,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    prompt_template: str = PLAIN_TEMPLATE,
    step_template: str = "{step}{tag}\n\n",
    positive_label: int = 1,
    good_token: str | None = None,
    bad_token: str | None = None,
    add_bos_token: bool = False,
    tokenizer: str | None = None,
    dtype: str = "auto",
    max_length: int | None = None,
    on_overflow: OverflowPolicy | str = OverflowPolicy.error,
    trust_remote_code: bool | None = False,
    remote_code_for: str | None = None,
    base_url: str | None = None,
    hf: Mapping[str, Any] | None = None,
    vllm: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
) -> ScorerPlan:
    """``build_scorer``'s arguments checked without loading anything (the entry points call
    it through ``search.components.check_component`` before any model loads): backend,
    format, every backend's options (one config serves all three), dtype, overflow policy,
    batch sizes and ``max_length``. Raises ValueError naming the setting and the fix."""
    chosen = enum_setting(Backend, backend, "scorer.backend", "scorer.backend=hf")
    if chosen is Backend.vllm_server and not base_url:
        raise ValueError(
            "expected scorer.base_url for backend=vllm_server, got none; "
            "fix: scorer.base_url=http://HOST:PORT (a vLLM server started with --runner pooling)"
        )
    chosen_family = enum_setting(
        PRMFamily, family, "scorer.family", "scorer.family=token_classification"
    )
    fmt = PRMFormat(
        family=chosen_family,
        step_tag=step_tag,
        use_chat_template=use_chat_template,
        system_prompt=system_prompt,
        prompt_template=prompt_template,
        step_template=step_template,
        positive_label=positive_label,
        good_token=good_token,
        bad_token=bad_token,
        add_bos_token=add_bos_token,
    )
    check_trained_layout(model, fmt)
    config = local_json(model, "config.json")  # None: not a local checkpoint, not checked
    check_architecture(model, config, fmt)
    token_ids = check_format_tokens(tokenizer or model, fmt)
    check_head_and_vocabulary(model, config, fmt, token_ids)
    options = {
        Backend.hf: backend_options("scorer", "hf", hf, _HF_KEYS),
        Backend.vllm: backend_options("scorer", "vllm", vllm, _VLLM_KEYS),
        Backend.vllm_server: backend_options("scorer", "server", server, _SERVER_KEYS),
    }
    for block, block_options in (
        ("hf", options[Backend.hf]),
        ("server", options[Backend.vllm_server]),
    ):
        name = f"scorer.{block}.batch_size"
        int_setting(block_options.get("batch_size", 1), name, 1, f"{name}=16")
    hf_options = options[Backend.hf]
    name = "scorer.hf.prefix_cache_tokens"
    int_setting(hf_options.get("prefix_cache_tokens", 0), name, 0, f"{name}=65536", " (0: off)")
    auto_class = hf_options.get("auto_class")
    if auto_class is not None and auto_class not in AUTO_CLASSES:
        raise ValueError(
            f"expected scorer.hf.auto_class in {list(AUTO_CLASSES)} or null (the family's "
            f"own), got {auto_class!r}; fix: scorer.hf.auto_class=null"
        )
    if chosen is Backend.hf and auto_class == "AutoModel":
        trusted = trusts_remote_code(model, trust_remote_code, remote_code_for)
        check_auto_model(model, config, trusted)
    check_dtype(dtype, "scorer.dtype")
    overflow = enum_setting(
        OverflowPolicy, on_overflow, "scorer.on_overflow", "scorer.on_overflow=error"
    )
    if max_length is not None:
        note = " or null (the model's own)"
        int_setting(max_length, "scorer.max_length", 1, "scorer.max_length=null", note)
    common: dict[str, Any] = {
        "tokenizer": tokenizer,
        "dtype": dtype,
        "trust_remote_code": trust_remote_code,
        "max_length": max_length,
        "on_overflow": overflow,
    }
    return ScorerPlan(model, chosen, fmt, common, options[chosen], remote_code_for, base_url)


@checks_settings_with(scorer_plan)
def build_scorer(model: str, backend: Backend | str = Backend.hf, **settings: Any) -> StepTagScorer:
    """Load a step-tag PRM with the chosen backend (``hf``: transformers, ``vllm``: pooling).

    ``settings`` are ``scorer_plan``'s keyword arguments (its signature lists them with their
    defaults; it checks them all before anything loads). The keyword arguments from
    ``family`` to ``add_bos_token`` make the ``PRMFormat``.
    ``hf`` options: ``batch_size``, ``device``, ``device_map``, ``auto_class``,
    ``reuse_prefix_cache``, ``prefix_cache_tokens`` (see ``HFScorer.load``); ``vllm``
    options: ``gpu_memory_utilization``, ``tensor_parallel_size``, ``block_size``,
    ``enforce_eager``, ``reuse_prefix_cache``, ``kv_cache_space_gib``, ``seed`` (see
    ``VLLMScorer.load``); ``vllm_server`` (a running server at ``base_url``, ``model``
    gives the tokenizer) options under ``server``: ``served_model_name``, ``batch_size``,
    ``api_key_env``, ``timeout_s``, ``connect_timeout_s``, ``max_concurrency``,
    ``max_retries`` (see ``VLLMServerScorer.load``). The options of the backends not chosen
    are ignored, so one config serves all three.

    ``trust_remote_code``: ``True`` runs the model repository's own code whatever ``model``
    is; ``None`` trusts it only when ``model`` is ``remote_code_for`` (the model a config was
    written for), so pointing such a config at another model does not silently run that
    model's code.
    """
    plan = scorer_plan(model, backend, **settings)
    common = dict(plan.common)
    common["trust_remote_code"] = resolve_trust(
        model, plan.common["trust_remote_code"], plan.remote_code_for
    )
    if plan.backend is Backend.hf:
        from prm.scoring.hf_backend import HFScorer

        return HFScorer.load(model, plan.fmt, **common, **plan.options)
    if plan.backend is Backend.vllm_server:
        from prm.scoring.server_backend import VLLMServerScorer

        assert plan.base_url is not None
        del common["dtype"]  # the server's choice (--dtype)
        return VLLMServerScorer.load(
            model, plan.fmt, base_url=plan.base_url, **common, **plan.options
        )
    from prm.scoring.vllm_backend import VLLMScorer

    return VLLMScorer.load(model, plan.fmt, **common, **plan.options)


# the PRMFormat fields that prm.train records in a checkpoint's training_log.json
TRAINED_LAYOUT = ("step_tag", "step_template", "prompt_template", "use_chat_template")


def check_trained_layout(model: str, fmt: PRMFormat) -> None:
    """Refuse a format whose input layout differs from the one a checkpoint trained by
    ``prm.train`` learned (its ``training_log.json``): a PRM read at another step tag or
    template scores noise. A checkpoint without that log (a hub PRM) is not checked."""
    trained = (local_json(model, "training_log.json") or {}).get("config")
    if not isinstance(trained, dict):
        return  # no log, or not prm.train's
    keys = [
        *TRAINED_LAYOUT,
        *(["positive_label"] if fmt.family is PRMFamily.token_classification else []),
        *(["system_prompt"] if fmt.use_chat_template else []),
    ]
    differing = [key for key in keys if key in trained and trained[key] != getattr(fmt, key)]
    if differing:
        got = ", ".join(f"scorer.{key}={getattr(fmt, key)!r}" for key in differing)
        typed = [key for key in differing if _typeable(trained[key])]
        in_yaml = [key for key in differing if key not in typed]
        fixes = [" ".join(_override(f"scorer.{key}", trained[key]) for key in typed)]
        if in_yaml:  # a line break, a quote, $, ` or \ does not survive a shell and Hydra
            fixes.append(
                "in a scorer YAML (these values cannot be typed safely as overrides): "
                + ", ".join(f"{key}: {json.dumps(trained[key])}" for key in in_yaml)
            )
        raise InputError(
            f"expected the input layout {model} was trained with (its training_log.json), got "
            f"{got}; fix: {'; and '.join(fix for fix in fixes if fix)}"
        )


_UNSAFE = re.compile(r"[\n'\"$`\\]")  # what a shell or Hydra's quoting would change


def _typeable(value: Any) -> bool:
    return not isinstance(value, str) or not _UNSAFE.search(value)


def _override(key: str, value: Any) -> str:
    """``key=value`` as a shell would pass it to Hydra (for a ``_typeable`` value): a string
    quoted for Hydra (so ``<``, ``{`` and spaces survive) inside double quotes for the
    shell."""
    if isinstance(value, str):
        return f"\"{key}='{value}'\""
    return f"{key}={json.dumps(value)}"


def _local_pretrained(kind: str, path: str) -> Any | None:
    """``transformers.Auto<kind>.from_pretrained`` of a local folder, or of a hub name whose
    files are in the local cache (never downloading: a check must not wait on the network),
    never running remote code (a check must not run a model's code). ``None`` when
    transformers cannot read it that way (not cached, or it needs remote code: its load
    says why).

    The pre-load checks of one entry point ask for the same tokenizer and config several
    times (the step-tag check, the length check, its fix's context): each is read once per
    process while the folder's files stay as they were (``_folder_state``), not once per
    check (a large model's tokenizer takes seconds). The objects are shared between the
    checks that ask: read them, do not change them."""
    from search.resolve import local_model_dir

    directory = local_model_dir(path)
    files = directory if directory is not None else _hub_snapshot(path)
    try:
        state = _folder_state(files)
    except OSError:  # the folder cannot be listed (gone, or no permission): load, no memo
        return _read_pretrained.__wrapped__(kind, path, directory, files, ())
    return _read_pretrained(kind, path, directory, files, state)


def _hub_snapshot(name: str) -> Path | None:
    """The local hub cache's snapshot folder of ``name`` (where its ``config.json`` is, which
    transformers needs beside a hub tokenizer too), or ``None`` when it is not cached."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # not a valid repo name, or no hub library: nothing cached to read
        return None
    return Path(found).parent if isinstance(found, str) else None


def _folder_state(folder: Path | None) -> tuple[tuple[str, int, int, int, int], ...]:
    """Name, size, inode, and change and modification times of every file in ``folder``:
    what ``_read_pretrained`` remembers a load by, so a folder whose files were edited or
    replaced since (or a hub model downloaded since) is read again."""
    if folder is None:
        return ()
    state = []
    for item in sorted(folder.iterdir()):
        try:
            info = item.stat()  # once per file: the state is of one moment
        except FileNotFoundError:  # a broken link (or a file gone since listed): not read
            continue
        if stat.S_ISREG(info.st_mode):
            state.append((item.name, info.st_size, info.st_ino, info.st_ctime_ns, info.st_mtime_ns))
    return tuple(state)


@functools.lru_cache(maxsize=16)
def _read_pretrained(
    kind: str,
    path: str,
    directory: Path | None,
    files: Path | None,
    state: tuple[tuple[str, int, int, int, int], ...],
) -> Any | None:
    """``_local_pretrained``'s load (``files`` and ``state`` only key the memo)."""
    try:
        import transformers

        auto = getattr(transformers, f"Auto{kind}")
        if directory is not None:
            return auto.from_pretrained(str(directory), trust_remote_code=False)
        return auto.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    except Exception:
        return None


def check_format_tokens(tokenizer: str, fmt: PRMFormat) -> TokenIds | None:
    """Before any model loads: the format's step tag (and label tokens, bos, chat template)
    against a local tokenizer (``prm.scoring.format.resolve_token_ids``, the check the
    scorer runs when it loads), read from a local folder or the local hub cache; returns
    their ids. A hub name not downloaded yet, or a tokenizer transformers cannot read here,
    is left to the load, which reports it (``None``)."""
    loaded = _local_pretrained("Tokenizer", tokenizer)
    if loaded is None:
        return None
    return resolve_token_ids(loaded, fmt)  # ValueError naming scorer.<key> and the fix


def check_head_and_vocabulary(
    model: str, config: Mapping[str, Any] | None, fmt: PRMFormat, ids: TokenIds | None
) -> None:
    """Before any model loads, from a local checkpoint's ``config.json`` (``config``, read
    by ``scorer_plan``; ``None``: not a local checkpoint, nothing checked): a transformers
    token classifier read as a token-classification PRM has 2 labels (``id2label``), and the
    format's token ids fall inside the model's ``vocab_size`` (a tokenizer given tokens the
    model was not resized for). The transformers backend checks both again on the loaded
    model; a PRM's own remote-code class is left to it."""
    if config is None:
        return
    names = [str(name) for name in config.get("architectures") or []]
    classifier = bool(names) and all(name.endswith("ForTokenClassification") for name in names)
    labels = config.get("id2label")
    reads_labels = fmt.family is PRMFamily.token_classification and classifier
    if reads_labels and isinstance(labels, dict) and len(labels) != 2:
        raise InputError(
            f"expected a token-classification PRM with 2 labels (wrong, right), got {model} "
            f"whose config.json has {len(labels)} ({sorted(labels.values())}); fix: a PRM "
            "checkpoint trained with num_labels=2 (python -m prm.train makes one)"
        )
    vocabulary = config.get("vocab_size")
    if ids is None or not isinstance(vocabulary, int) or "auto_map" in config:
        return  # a class of its own (auto_map) may read vocab_size otherwise
    used = [value for value in (ids.step_tag, ids.good, ids.bad, ids.bos) if value is not None]
    if used and max(used) >= vocabulary:
        raise InputError(
            f"expected the tag/label token ids {used} below {model}'s vocab_size {vocabulary} "
            "(config.json), got one past it; fix: load the tokenizer that belongs to this "
            "model (scorer.tokenizer), or resize the model's embeddings after adding tokens "
            "(model.resize_token_embeddings(len(tokenizer)), then save it)"
        )


def check_auto_model(model: str, config: Mapping[str, Any] | None, trusted: bool) -> None:
    """``scorer.hf.auto_class=AutoModel`` loads a PRM whose class ships as code in its
    checkpoint (``config.json``'s ``auto_map`` names it for ``AutoModel``, as
    Qwen2.5-Math-PRM's does). Without that code running, or without such a class, transformers
    loads the bare model of the checkpoint's ``model_type``, which has no reward head: refuse
    either for a local checkpoint with weights, before anything loads, naming the way out
    (``config``: its ``config.json``, read by ``scorer_plan``)."""
    folder = local_model_dir(model)
    if config is None or folder is None:
        return
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        return  # no weights to load: check_checkpoint says what the folder lacks
    auto_map = config.get("auto_map")
    ships_class = isinstance(auto_map, dict) and "AutoModel" in auto_map
    if ships_class and trusted:
        return
    names = [str(name) for name in config.get("architectures") or []]
    bare = f"the bare {config.get('model_type') or 'base'} model without its reward head"
    if not ships_class:
        raise InputError(
            f"expected scorer.hf.auto_class=AutoModel only for a checkpoint whose config.json "
            f"maps AutoModel to its own PRM class (auto_map), got {model} naming {names} "
            f"without one: AutoModel would load {bare}; fix: scorer.hf.auto_class=null (the "
            "family's transformers class)"
        )
    raise InputError(
        f"expected scorer.trust_remote_code=true to load {model} with scorer.hf.auto_class="
        f"AutoModel (its config.json names {names} and ships its class as code, auto_map), "
        f"got no remote code: AutoModel would load {bare}; fix: "
        "scorer.trust_remote_code=true if you trust its code"
    )


def local_context(model: str) -> int | None:
    """The model's context (``config.json``'s ``max_position_embeddings``) from a local folder
    or the local hub cache; ``None`` when it cannot be read there."""
    config = _local_pretrained("Config", model)
    context = getattr(config, "max_position_embeddings", None)
    return context if isinstance(context, int) and context > 0 else None


def local_encoder(model: str, **settings: Any) -> PrefixEncoder | None:
    """The encoder ``build_scorer(model, **settings)`` will score with (format, tokenizer,
    ``max_length``, ``on_overflow``), made before any model loads from the tokenizer and
    ``config.json`` of a local folder or of the local hub cache, so that an entry point can
    refuse an input that will not fit before the load (``prm.processbench``). ``None`` when
    it cannot be known here: a hub model not downloaded yet, one that needs remote code to
    read, or a served PRM (``backend=vllm_server``: its length is the server's)."""
    plan = scorer_plan(model, **settings)
    if plan.backend is Backend.vllm_server:
        return None
    tokenizer = _local_pretrained("Tokenizer", plan.common["tokenizer"] or model)
    config = _local_pretrained("Config", model)
    if tokenizer is None or config is None:
        return None
    limit = resolve_max_length(plan.common["max_length"], config, tokenizer)
    return PrefixEncoder(tokenizer, plan.fmt, limit, plan.common["on_overflow"])


def check_architecture(model: str, config: Mapping[str, Any] | None, fmt: PRMFormat) -> None:
    """Refuse, before any backend loads it, a local checkpoint whose ``config.json``
    (``config``, read by ``scorer_plan``; ``None``: not a local checkpoint) names
    an architecture of the other family: a causal LM (``...ForCausalLM``) read as a
    token-classification PRM, or a token classifier read for label tokens, would be scored
    with a head filled at random (the transformers backend also checks the weights it
    loads; vLLM would not say). Other architectures (a PRM's own remote code) pass."""
    architectures = (config or {}).get("architectures")
    names = [str(name) for name in architectures or []]
    suffix = {
        PRMFamily.token_classification: "ForCausalLM",
        PRMFamily.label_token: "ForTokenClassification",
    }[fmt.family]  # the other family's architectures
    if names and all(name.endswith(suffix) for name in names):
        raise InputError(
            f"expected a checkpoint for family={fmt.family.value}, got {model} whose "
            f"config.json names {names}, whose head this family would fill at random; fix: "
            f"{fmt.family.wrong_checkpoint_fix()}"
        )
