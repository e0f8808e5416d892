"""The byte-level tokenizer of the embedded policy and PRM.

Every byte is one token (a byte-level BPE with no merges, the same pre-tokenizer and decoder
as GPT-2/Qwen), so the tiny models see digits one by one and ``"\\n\\n"`` is two tokens.
Special tokens:

- ``<|endoftext|>``: end of a solution (eos) and padding;
- ``<step>``: the PRM step tag, placed after every step when a PRM scores a solution
  (the role ``<extra_0>`` plays for Qwen2.5-Math-PRM).
"""

from __future__ import annotations

EOS_TOKEN = "<|endoftext|>"
STEP_TAG = "<step>"
SPECIAL_TOKENS = (EOS_TOKEN, STEP_TAG)


def build_tokenizer():  # type: ignore[no-untyped-def]
    """A ``PreTrainedTokenizerFast`` with 256 byte tokens and the special tokens above."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        additional_special_tokens=[STEP_TAG],
        model_max_length=256,  # the embedded models' max_position_embeddings
        padding_side="left",
    )
    return tokenizer
