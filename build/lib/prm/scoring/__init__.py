"""Scoring solutions with a process reward model, one probability per step.

``build_scorer`` (the ``_target_`` of ``conf/scorer/*.yaml``) loads a PRM described by a
``PRMFormat`` with the transformers (``HFScorer``), vLLM pooling (``VLLMScorer``) or vLLM
server (``VLLMServerScorer``) backend;
vLLM and torch are imported only when a backend is loaded.
"""

from prm.scoring.base import StepTagScorer, positive_probability
from prm.scoring.encoding import EncodedPrefix, OverflowPolicy, PrefixEncoder
from prm.scoring.factory import Backend, build_scorer
from prm.scoring.format import PRMFamily, PRMFormat, TokenIds, render_text, resolve_token_ids
from prm.scoring.hf_backend import HFScorer
from prm.scoring.ledger import TokenLedger
from prm.scoring.server_backend import VLLMServerScorer
from prm.scoring.vllm_backend import VLLMScorer

__all__ = [
    "Backend",
    "EncodedPrefix",
    "HFScorer",
    "OverflowPolicy",
    "PRMFamily",
    "PRMFormat",
    "PrefixEncoder",
    "StepTagScorer",
    "TokenIds",
    "TokenLedger",
    "VLLMScorer",
    "VLLMServerScorer",
    "build_scorer",
    "positive_probability",
    "render_text",
    "resolve_token_ids",
]
