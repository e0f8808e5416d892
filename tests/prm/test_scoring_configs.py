"""conf/scorer/*.yaml: every config binds to build_scorer, instantiates, and names its model."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from tiny_prms import embedded_prm, save

from prm.scoring import HFScorer, PRMFamily, PRMFormat, build_scorer
from prm.scoring.factory import _HF_KEYS, _SERVER_KEYS, _VLLM_KEYS
from search.guards import call_scorer
from search.protocols import Scorer
from search.resolve import REPO_ROOT, resolve_model_path
from search.types import Prefix, Problem

SCORER_DIR = REPO_ROOT / "conf" / "scorer"
PRM_CONFIGS = sorted(  # the step-tag PRMs (fake.yaml and none.yaml are someone else's)
    p for p in SCORER_DIR.glob("*.yaml") if "prm.scoring.build_scorer" in p.read_text()
)
FORMAT_KEYS = set(inspect.signature(PRMFormat).parameters)


def test_every_prm_config_is_shipped() -> None:
    assert {p.stem for p in PRM_CONFIGS} >= {
        "arith_prm",
        "qwen25_math_prm_7b",
        "qwen25_math_prm_72b",
        "math_shepherd",
    }


@pytest.mark.parametrize("path", PRM_CONFIGS, ids=lambda p: p.stem)
def test_config_binds_to_build_scorer_and_makes_a_valid_format(path: Path) -> None:
    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert isinstance(loaded, dict)
    config: dict[str, Any] = {str(key): value for key, value in loaded.items()}
    assert config.pop("_target_") == "prm.scoring.build_scorer"
    config.pop("_convert_", None)
    inspect.signature(build_scorer).bind(**config)  # no unknown or missing keys
    assert set(config.get("hf", {})) <= set(_HF_KEYS)
    assert set(config.get("vllm", {})) <= set(_VLLM_KEYS)
    assert set(config.get("server", {})) <= set(_SERVER_KEYS)
    assert config["backend"] in ("hf", "vllm", "vllm_server")
    fmt = PRMFormat(**{k: v for k, v in config.items() if k in FORMAT_KEYS})
    if fmt.use_chat_template:
        assert fmt.system_prompt == (
            "Please reason step by step, and put your final answer within \\boxed{}."
        )


def test_public_prm_layouts_follow_their_cards() -> None:
    def load(name: str) -> dict:
        config = OmegaConf.to_container(OmegaConf.load(SCORER_DIR / f"{name}.yaml"))
        assert isinstance(config, dict)
        return config

    for name in ("qwen25_math_prm_7b", "qwen25_math_prm_72b"):
        qwen = load(name)
        assert (qwen["step_tag"], qwen["step_template"], qwen["use_chat_template"]) == (
            "<extra_0>",
            "{step}{tag}",
            True,
        )
        assert qwen["trust_remote_code"] is None and qwen["hf"]["auto_class"] == "AutoModel"
        assert qwen["remote_code_for"] == qwen["model"]
    shepherd = load("math_shepherd")
    assert shepherd["family"] == PRMFamily.label_token.value
    assert (shepherd["step_tag"], shepherd["good_token"], shepherd["bad_token"]) == ("ки", "+", "-")
    assert shepherd["prompt_template"] + shepherd["step_template"] == "{question} {step} {tag}\n"
    arith = load("arith_prm")
    assert arith["model"] == "checkpoints/arith-prm"
    assert arith["prompt_template"] == "Question: {question}\nAnswer:\n"


def test_none_selects_no_scorer() -> None:
    text = (SCORER_DIR / "none.yaml").read_text()
    assert text.startswith("# @package _global_")
    assert OmegaConf.load(SCORER_DIR / "none.yaml").scorer is None


def test_arith_config_instantiates_on_a_checkpoint(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    model, tokenizer = embedded_prm()
    path = save(model, tokenizer, tmp_path / "arith-prm")
    config = OmegaConf.load(SCORER_DIR / "arith_prm.yaml")
    config.model = str(path)
    scorer = instantiate(config)
    assert isinstance(scorer, HFScorer) and isinstance(scorer, Scorer)
    assert scorer.batch_size == config.hf.batch_size
    problem = Problem("p", "Compute 1 + 2.", "3")
    out = call_scorer(scorer, [Prefix(problem, ("1 + 2 = 3",))])
    assert len(out.scores[0]) == 1 and out.tokens == out.new_tokens


def test_the_local_encoder_is_the_one_the_scorer_loads_with(tmp_path: Path) -> None:
    """``local_encoder`` (made before any load, for pre-load length checks) encodes as the
    loaded scorer does, and says None where it cannot know: a hub name, a served PRM."""
    from prm.scoring.factory import local_encoder

    model, tokenizer = embedded_prm()
    path = str(save(model, tokenizer, tmp_path / "arith-prm"))
    settings = {
        k: v
        for k, v in OmegaConf.to_container(OmegaConf.load(SCORER_DIR / "arith_prm.yaml")).items()
        if not k.startswith("_") and k != "model"
    }
    encoder = local_encoder(path, **settings)
    scorer = build_scorer(path, **settings)
    assert encoder is not None and isinstance(scorer, HFScorer)
    assert encoder.max_length == scorer.encoder.max_length
    problem = Problem("p", "Compute 1 + 2 + 3.", "6")
    prefix = Prefix(problem, ("1 + 2 = 3", "3 + 3 = 6"))
    assert encoder.encode_one(prefix) == scorer.encoder.encode_one(prefix)
    served = settings | {"backend": "vllm_server", "base_url": "http://127.0.0.1:1"}
    assert local_encoder(path, **served) is None


def test_the_local_encoder_reads_a_hub_model_from_the_cache_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub name whose files are in the local cache gets its pre-load check too (the large
    PRMs are hub names); one not downloaded gets none, and nothing is fetched."""
    import shutil

    import huggingface_hub.constants

    from prm.scoring.factory import local_encoder

    model, tokenizer = embedded_prm()
    saved = save(model, tokenizer, tmp_path / "saved")
    repo = tmp_path / "hub" / "models--someone--tiny-prm"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(saved / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    settings = {"step_tag": "<step>", "max_length": 8}
    encoder = local_encoder("someone/tiny-prm", **settings)
    assert encoder is not None and encoder.max_length == 8
    assert local_encoder("someone/not-downloaded", **settings) is None


def test_unknown_backend_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown \\['batchsize'\\]"):
        build_scorer("checkpoints/arith-prm", hf={"batchsize": 4})
    with pytest.raises(
        ValueError, match=r"expected scorer.backend in \[.hf., .vllm., .vllm_server.\]"
    ):
        build_scorer("checkpoints/arith-prm", backend="onnx")
    with pytest.raises(ValueError, match="expected scorer.base_url for backend=vllm_server"):
        build_scorer("checkpoints/arith-prm", backend="vllm_server")


def test_model_paths_resolve_locally_then_against_the_repo_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("mine") == str(tmp_path / "mine")
    assert resolve_model_path("search") == str(REPO_ROOT / "search")  # found from elsewhere
    with pytest.raises(FileNotFoundError, match="checkpoints/no-such-prm.*fix"):
        resolve_model_path("checkpoints/no-such-prm")
    # not local: a hub name, checked against the cache and the network (tests/test_resolve_hub.py)
    monkeypatch.setattr("search.resolve.check_hub_reachable", lambda name, key=None: None)
    assert resolve_model_path("Qwen/Qwen2.5-Math-PRM-7B") == "Qwen/Qwen2.5-Math-PRM-7B"


def test_the_custom_scorer_example_is_a_scorer() -> None:
    from custom_scorer_example import LengthPenaltyScorer

    scorer = LengthPenaltyScorer(max_chars=20)
    assert isinstance(scorer, Scorer)
    problem = Problem("p", "Compute 1 + 2.", "3")
    out = call_scorer(scorer, [Prefix(problem, ("1 + 2 = 3", "x" * 30)), Prefix(problem)])
    assert out.scores == [[pytest.approx(1 - 9 / 20), 0.05], []]
    assert out.tokens is None  # no score_with_usage: PRM tokens unknown, not 0


def test_remote_code_is_trusted_only_for_the_model_a_config_names() -> None:
    from prm.scoring.factory import resolve_trust

    qwen = "Qwen/Qwen2.5-Math-PRM-7B"
    assert resolve_trust(qwen, None, qwen)
    assert not resolve_trust("/models/other-prm", None, qwen)  # another model: no
    assert resolve_trust("/models/other-prm", True, qwen)  # unless passed explicitly
    assert not resolve_trust(qwen, False, qwen)
    assert not resolve_trust("any", None, None)


def test_the_remote_code_warning_is_for_checkpoints_that_ship_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from prm.scoring.factory import resolve_trust

    qwen = "Qwen/Qwen2.5-Math-PRM-7B"
    plain, coded = tmp_path / "plain", tmp_path / "coded"
    for folder, config in ((plain, {}), (coded, {"auto_map": {"AutoModel": "m.Model"}})):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
    with caplog.at_level("WARNING"):
        assert not resolve_trust(str(plain), None, qwen)  # a transformers class: nothing to say
    assert "not running remote code" not in caplog.text
    with caplog.at_level("WARNING"):
        assert not resolve_trust(str(coded), None, qwen)
    assert "not running remote code" in caplog.text and "trust_remote_code=true" in caplog.text


def test_the_trained_layout_check_reads_local_checkpoints_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hub name (or a served model's name) is not looked up: the check must work offline
    and add no network probe."""
    import search.resolve
    from prm.scoring.factory import check_trained_layout
    from prm.scoring.format import PRMFormat
    from search.inputs import InputError

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the layout check probed the hub")

    monkeypatch.setattr(search.resolve, "check_hub_reachable", no_network)
    fmt = PRMFormat(family="token_classification", step_tag="<extra_0>")
    check_trained_layout("Qwen/Qwen2.5-Math-PRM-7B", fmt)  # not local: not checked
    with pytest.raises(InputError, match="trained with"):
        check_trained_layout("checkpoints/arith-prm", fmt)


@pytest.mark.parametrize(
    ("model", "family", "fix"),
    [
        ("checkpoints/arith-verifier-base", "token_classification", "family=label_token"),
        ("checkpoints/arith-prm", "label_token", "family=token_classification"),
    ],
)
def test_a_checkpoint_of_the_other_family_is_refused_before_loading(
    model: str, family: str, fix: str
) -> None:
    """On every backend (vLLM would load a random head without a word), before any load."""
    from prm.scoring.factory import scorer_plan
    from search.inputs import InputError

    labels = {"good_token": "+", "bad_token": "-"} if family == "label_token" else {}
    for backend in ("hf", "vllm"):
        with pytest.raises(InputError, match=rf"names \['Qwen2For\w+'\].*fix: {fix}"):
            scorer_plan(model, backend, family=family, step_tag="<step>", **labels)


@pytest.mark.parametrize("value", ["<step>", "{step} {tag}", "ки", "Step: ", "1 + 2", 3, True])
def test_a_typed_layout_fix_survives_the_shell_and_hydra(value: object) -> None:
    import subprocess

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from prm.scoring.factory import _override, _typeable

    assert _typeable(value)
    typed = subprocess.run(
        ["bash", "-c", f"printf '%s' {_override('scorer.step_tag', value)}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    [parsed] = OverridesParser.create().parse_overrides([typed])
    assert parsed.value() == value


@pytest.mark.parametrize("value", ["a\nb", "Let's think", 'say "hi"', "$HOME", "a`b`", "x\\"])
def test_a_value_a_shell_or_hydra_would_change_goes_to_a_yaml(value: str) -> None:
    from prm.scoring.factory import _typeable

    assert not _typeable(value)


def test_pre_load_checks_read_a_tokenizer_and_config_once_until_the_folder_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step-tag check, the length check and its fix's context all read the same folder:
    one tokenizer and one config load, not one per check; an edited folder is read again."""
    import transformers

    from prm.scoring.factory import check_format_tokens, local_context, local_encoder

    model, tokenizer = embedded_prm()
    path = str(save(model, tokenizer, tmp_path / "arith-prm"))
    loads: list[str] = []
    inside: list[str] = []  # a tokenizer's own load reads its config: count the outer call
    for kind in ("AutoTokenizer", "AutoConfig"):
        original = getattr(transformers, kind).from_pretrained

        def counted(*args: Any, _kind: str = kind, _load: Any = original, **kwargs: Any) -> Any:
            if not inside:
                loads.append(_kind)
            inside.append(_kind)
            try:
                return _load(*args, **kwargs)
            finally:
                inside.pop()

        monkeypatch.setattr(getattr(transformers, kind), "from_pretrained", counted)
    fmt = PRMFormat(PRMFamily.token_classification, step_tag="<step>")
    check_format_tokens(path, fmt)
    first = local_encoder(path, step_tag="<step>")
    config = Path(path) / "config.json"
    context = json.loads(config.read_text())["max_position_embeddings"]
    assert local_context(path) == context
    assert sorted(loads) == ["AutoConfig", "AutoTokenizer"]
    config.write_text(
        json.dumps(json.loads(config.read_text()) | {"max_position_embeddings": context // 2})
    )
    again = local_encoder(path, step_tag="<step>")
    assert first is not None and again is not None
    assert (first.max_length, again.max_length) == (context, context // 2)
    assert sorted(loads) == ["AutoConfig", "AutoConfig", "AutoTokenizer", "AutoTokenizer"]


def test_pre_load_checks_read_a_hub_snapshot_again_once_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub name is remembered by its cached snapshot's files (found by its config.json):
    what could not be read before the rest of the download is read once it is there, not
    answered from the memo."""
    import shutil

    import huggingface_hub.constants

    from prm.scoring.factory import _local_pretrained

    model, tokenizer = embedded_prm()
    saved = save(model, tokenizer, tmp_path / "saved")
    repo = tmp_path / "hub" / "models--someone--half-downloaded"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(saved / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    name = "someone/half-downloaded"
    # transformers reads a hub tokenizer only with its model's config.json beside it
    assert _local_pretrained("Tokenizer", name) is None
    assert _local_pretrained("Config", name) is None
    shutil.copy(saved / "config.json", snapshot / "config.json")
    assert _local_pretrained("Tokenizer", name) is not None
    config = _local_pretrained("Config", name)
    assert config is not None and config.model_type == "qwen2"


def test_pre_load_memo_reads_a_replaced_file_again_and_skips_what_it_cannot_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config.json replaced by another with the old size and times (``cp -p``, ``rsync
    -a``) is a new file: read again. A broken link in the folder is skipped, the memo still
    used; a folder that cannot be listed is read without the memo."""
    import os
    import shutil

    from prm.scoring import factory

    model, tokenizer = embedded_prm()
    folder = save(model, tokenizer, tmp_path / "arith-prm")
    config = folder / "config.json"
    first = factory._local_pretrained("Config", str(folder))
    assert first is not None
    assert factory._local_pretrained("Config", str(folder)) is first  # remembered
    times = (config.stat().st_atime_ns, config.stat().st_mtime_ns)
    changed = json.loads(config.read_text()) | {"rms_norm_eps": 2e-6}
    text = json.dumps(changed)
    replacement = tmp_path / "config.json"
    replacement.write_text(text + " " * (config.stat().st_size - len(text)))  # the same size
    shutil.copy(replacement, tmp_path / "staged.json")
    os.replace(tmp_path / "staged.json", config)  # a new inode at the old name
    os.utime(config, ns=times)
    again = factory._local_pretrained("Config", str(folder))
    assert again is not first and again.rms_norm_eps == 2e-6
    (folder / "dangling").symlink_to(tmp_path / "nowhere")
    assert factory._local_pretrained("Config", str(folder)) is not None
    hits = factory._read_pretrained.cache_info().hits
    assert factory._local_pretrained("Config", str(folder)) is not None
    assert factory._read_pretrained.cache_info().hits == hits + 1  # the memo still serves

    def unlistable(folder: Path | None) -> tuple[tuple[str, int, int, int, int], ...]:
        raise PermissionError(f"cannot list {folder}")

    monkeypatch.setattr(factory, "_folder_state", unlistable)
    size = factory._read_pretrained.cache_info().currsize
    assert factory._local_pretrained("Config", str(folder)) is not None
    assert factory._read_pretrained.cache_info().currsize == size


def test_a_classifier_without_two_labels_is_refused_before_loading(tmp_path: Path) -> None:
    """config.json says how many labels a transformers token classifier has: read it before
    the policy and the PRM load, not after."""
    from prm.scoring.factory import scorer_plan
    from search.inputs import InputError

    model, tokenizer = embedded_prm()
    path = save(model, tokenizer, tmp_path / "three-labels")
    config = json.loads((path / "config.json").read_text())
    scorer_plan(str(path), "hf")  # 2 labels: fine
    config["id2label"] = {"0": "wrong", "1": "right", "2": "unsure"}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"2 labels \(wrong, right\), got .*has 3 .*num_labels=2"):
        scorer_plan(str(path), "hf")


def test_tag_tokens_past_the_models_vocabulary_are_refused_before_loading(tmp_path: Path) -> None:
    """A tokenizer given a tag token the model was not resized for: the ids are past
    config.json's vocab_size, refused before any load with the resize as the fix."""
    from tiny_prms import qwen_style_tokenizer

    from prm.scoring.factory import scorer_plan
    from search.inputs import InputError

    model, tokenizer = embedded_prm()
    path = save(model, tokenizer, tmp_path / "unresized")
    qwen_style_tokenizer().save_pretrained(str(path))  # <extra_0> added, embeddings not resized
    with pytest.raises(InputError, match=r"below .*vocab_size \d+ .*resize_token_embeddings"):
        scorer_plan(str(path), "hf", step_tag="<extra_0>")
    scorer_plan(str(path), "hf", step_tag="<step>")  # a token the model has: fine


def test_auto_model_without_remote_code_is_refused_before_loading(tmp_path: Path) -> None:
    """A local copy of a PRM whose class ships as code (Qwen2.5-Math-PRM's config: AutoModel),
    not trusted: transformers would load the bare base model, its reward head dropped. Refused
    before anything loads, naming both fixes; trusted, it passes."""
    from tiny_prms import qwen_style_tokenizer

    from prm.scoring.factory import scorer_plan
    from search.inputs import InputError

    qwen = "Qwen/Qwen2.5-Math-PRM-7B"
    copy = tmp_path / "qwen-prm"
    copy.mkdir()
    remote_class = "modeling_qwen2_rm.Qwen2ForProcessRewardModel"
    config = {"architectures": ["Qwen2ForProcessRewardModel"], "model_type": "qwen2",
              "auto_map": {"AutoModel": remote_class}}  # fmt: skip
    (copy / "config.json").write_text(json.dumps(config))
    qwen_style_tokenizer().save_pretrained(str(copy))
    (copy / "model.safetensors").write_bytes(b"")  # weights to load (never read here)
    settings: dict[str, Any] = dict(
        step_tag="<extra_0>", hf={"auto_class": "AutoModel"}, remote_code_for=qwen
    )
    with pytest.raises(
        InputError,
        match=r"trust_remote_code=true .*ships its class as code.*bare qwen2 model .*fix: "
        r"scorer\.trust_remote_code=true",
    ):
        scorer_plan(str(copy), "hf", trust_remote_code=None, **settings)
    scorer_plan(str(copy), "hf", trust_remote_code=True, **settings)
    # no class of its own (a transformers token classifier): AutoModel is wrong, trusted or not
    config.pop("auto_map")
    config["architectures"] = ["Qwen2ForTokenClassification"]
    (copy / "config.json").write_text(json.dumps(config))
    for trust in (None, True):
        with pytest.raises(InputError, match=r"without one: .*fix: scorer\.hf\.auto_class=null"):
            scorer_plan(str(copy), "hf", trust_remote_code=trust, **settings)
    scorer_plan(qwen, "hf", trust_remote_code=None, **settings)  # the hub model: trusted
    scorer_plan(str(copy), "vllm", trust_remote_code=None, **settings)  # not the hf backend
