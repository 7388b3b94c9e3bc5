"""Tiny random models of every supported family and a character tokenizer, built in code (no download)."""

from __future__ import annotations

import torch

_COMMON = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)

TINY_CONFIGS = {
    "llama": ("LlamaConfig", _COMMON),
    "mistral": ("MistralConfig", _COMMON),
    "qwen2": ("Qwen2Config", _COMMON),
    "qwen3": ("Qwen3Config", {**_COMMON, "head_dim": 8}),
    "gemma": ("GemmaConfig", {**_COMMON, "head_dim": 8}),
    "gemma2": ("Gemma2Config", {**_COMMON, "head_dim": 8}),
    "gemma3_text": ("Gemma3TextConfig", {**_COMMON, "head_dim": 8, "sliding_window": 16}),
    "cohere": ("CohereConfig", _COMMON),
    "phi3": ("Phi3Config", {**_COMMON, "pad_token_id": 0}),
    "olmo2": ("Olmo2Config", _COMMON),
    "gpt2": ("GPT2Config", dict(vocab_size=128, n_embd=32, n_inner=64, n_layer=2, n_head=4, n_positions=256)),
    "bloom": ("BloomConfig", dict(vocab_size=128, hidden_size=32, n_layer=2, n_head=4)),
}


def make_tiny_model(model_type: str = "llama", seed: int = 0) -> torch.nn.Module:
    """A tiny randomly initialised causal LM of the given family, in eval mode, fp32."""
    import transformers

    cls_name, kwargs = TINY_CONFIGS[model_type]
    config = getattr(transformers, cls_name)(**kwargs)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.config.langneurons_model_id = f"tiny-{model_type}"
    return model.eval()


def char_tokenizer(chars: str, *, eos: bool = True):
    """A character-level ``PreTrainedTokenizerFast``: ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2 (unless
    ``eos=False``), ``<unk>``, then one id per character in order; decoding joins the characters."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", *(["</s>"] if eos else []), "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + list(dict.fromkeys(chars)))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>" if eos else None, unk_token="<unk>")
