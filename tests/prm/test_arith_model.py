"""The embedded PRM architecture and its initialisation from the policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prm.arith_model import (
    EMBEDDED_PRM_FORMAT,
    POSITIVE_LABEL,
    PRM_LABELS,
    build_random_prm,
    init_prm_from_policy,
)
from prm.scoring import HFScorer, build_scorer
from search.types import Prefix, Problem


def test_random_prm_is_a_two_label_qwen2_token_classifier() -> None:
    model = build_random_prm()
    assert type(model).__name__ == "Qwen2ForTokenClassification"
    assert model.config.num_labels == 2 and PRM_LABELS[POSITIVE_LABEL] == "right"
    assert model.config.id2label == PRM_LABELS
    assert model.config.hidden_size // model.config.num_attention_heads == 64
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3]])).logits
    assert logits.shape == (1, 3, 2)
    assert torch.equal(build_random_prm(seed=3).score.weight, build_random_prm(seed=3).score.weight)


def test_init_from_policy_copies_the_backbone_and_seeds_a_new_head(
    tiny_policy_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer, Qwen2ForCausalLM, Qwen2ForTokenClassification

    first = init_prm_from_policy(tiny_policy_dir, tmp_path / "a", seed=0)
    again = init_prm_from_policy(tiny_policy_dir, tmp_path / "b", seed=0)
    other = init_prm_from_policy(tiny_policy_dir, tmp_path / "c", seed=1)
    policy = Qwen2ForCausalLM.from_pretrained(str(tiny_policy_dir))
    prm = Qwen2ForTokenClassification.from_pretrained(str(first))
    for name, weight in policy.model.state_dict().items():
        assert torch.equal(prm.model.state_dict()[name], weight), name
    heads = [Qwen2ForTokenClassification.from_pretrained(str(p)).score for p in (again, other)]
    assert torch.equal(prm.score.weight, heads[0].weight)
    assert not torch.equal(prm.score.weight, heads[1].weight)
    assert torch.count_nonzero(prm.score.bias) == 0
    tokenizer = AutoTokenizer.from_pretrained(str(first))
    assert len(tokenizer.encode("<step>", add_special_tokens=False)) == 1
    assert prm.config.architectures == ["Qwen2ForTokenClassification"]


def test_initialised_prm_loads_in_the_scorer(tiny_policy_dir: Path, tmp_path: Path) -> None:
    path = init_prm_from_policy(tiny_policy_dir, tmp_path / "prm")
    scorer = build_scorer(str(path), backend="hf", max_length=256)
    assert isinstance(scorer, HFScorer) and scorer.format == EMBEDDED_PRM_FORMAT
    problem = Problem("p", "Compute 1 + 2.", "3")
    scores = scorer.score([Prefix(problem, ("1 + 2 = 3", "The answer is \\boxed{3}."))])
    assert len(scores[0]) == 2 and all(0.0 < s < 1.0 for s in scores[0])


def test_init_without_a_policy_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train_policy"):
        init_prm_from_policy(tmp_path / "missing", tmp_path / "prm")


def test_extra_layers_start_as_the_identity_on_the_policys_layers(
    tiny_policy_dir: Path, tmp_path: Path
) -> None:
    from transformers import Qwen2ForTokenClassification

    plain = Qwen2ForTokenClassification.from_pretrained(
        str(init_prm_from_policy(tiny_policy_dir, tmp_path / "plain", seed=0))
    )
    deeper = Qwen2ForTokenClassification.from_pretrained(
        str(init_prm_from_policy(tiny_policy_dir, tmp_path / "deeper", seed=0, extra_layers=2))
    )
    depth = plain.config.num_hidden_layers
    assert deeper.config.num_hidden_layers == depth + 2 == len(deeper.config.layer_types)
    new_layer = deeper.model.layers[depth]
    assert torch.count_nonzero(new_layer.self_attn.o_proj.weight) == 0
    assert torch.count_nonzero(new_layer.self_attn.q_proj.weight) > 0  # trainable, not dead
    tokens = torch.tensor([[5, 17, 42, 9, 3]])
    with torch.no_grad():  # same function as the policy-deep PRM until training moves it
        assert torch.allclose(plain(tokens).logits, deeper(tokens).logits, atol=1e-6)
    with pytest.raises(ValueError, match="extra_layers >= 0"):
        init_prm_from_policy(tiny_policy_dir, tmp_path / "bad", extra_layers=-1)


def test_tag_from_separator_starts_the_tag_embedding_as_the_newline(
    tiny_policy_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer, Qwen2ForCausalLM, Qwen2ForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_policy_dir))
    tag = tokenizer.convert_tokens_to_ids("<step>")
    (newline,) = tokenizer.encode("\n", add_special_tokens=False)
    policy = Qwen2ForCausalLM.from_pretrained(str(tiny_policy_dir)).model.embed_tokens.weight
    path = init_prm_from_policy(tiny_policy_dir, tmp_path / "prm", tag_from_separator=True)
    embeddings = Qwen2ForTokenClassification.from_pretrained(str(path)).model.embed_tokens.weight
    assert not torch.equal(policy[tag], policy[newline])
    assert torch.equal(embeddings[tag], policy[newline])
    others = [i for i in range(len(policy)) if i != tag]
    assert torch.equal(embeddings[others], policy[others])  # only the tag's row moves
