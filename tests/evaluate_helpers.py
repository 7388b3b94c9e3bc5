"""Offline stand-ins for the evaluation tests: a character tokenizer and a model whose neurons matter."""

from __future__ import annotations

import string

import torch

import tiny

CHARS = string.ascii_letters + string.digits + " .,;:!?'-\n"
"""Every character the test texts use; ids start after the special tokens."""


def char_tokenizer():
    """A character-level tokenizer over ``CHARS`` with fewer than 128 ids."""
    return tiny.char_tokenizer(CHARS)


LANGUAGE_CHARS = {"aaa_Latn": "abcdefgh", "bbb_Latn": "ijklmnop", "ccc_Latn": "qrstuvwx"}
"""Three synthetic 'languages', each written with its own eight letters."""


def language_texts(seed: int = 0, n: int = 3, length: int = 60) -> dict[str, list[str]]:
    """Random words over each language's letters."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for lang, chars in LANGUAGE_CHARS.items():
        texts = []
        for _ in range(n):
            idx = torch.randint(len(chars), (length,), generator=g).tolist()
            words = ["".join(chars[i] for i in idx[k : k + 5]) for k in range(0, length, 5)]
            texts.append(" ".join(words))
        out[lang] = texts
    return out


def language_neuron_model(tokenizer):
    """A tiny Llama in which neurons 8k..8k+7 of layer 0 alone predict language k's letters.

    The embedding of a letter of language k points along residual dimension k; those neurons read that
    dimension (gate and up) and write dimension 3 + k, and the LM head maps dimension 3 + k to language k's
    letters. Attention and the second FFN write nothing. Zeroing language k's neurons therefore leaves
    its text predicted uniformly and the other languages untouched.
    """
    from tiny import make_tiny_model

    model = make_tiny_model("llama")
    ids = {lang: tokenizer.convert_tokens_to_ids(list(chars)) for lang, chars in LANGUAGE_CHARS.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for norm in [m for n, m in model.named_modules() if n.endswith("norm")]:
            norm.weight.fill_(1.0)
        emb = model.model.embed_tokens.weight
        emb.fill_(0.0)
        emb[:, 10] = 1.0  # every token has a non-zero norm
        mlp = model.model.layers[0].mlp
        for k, lang in enumerate(LANGUAGE_CHARS):
            emb[ids[lang], k] = 1.0
            neurons = slice(8 * k, 8 * k + 8)
            mlp.gate_proj.weight[neurons, k] = 4.0
            mlp.up_proj.weight[neurons, k] = 4.0
            mlp.down_proj.weight[3 + k, neurons] = 4.0
            model.lm_head.weight[ids[lang], 3 + k] = 1.0
    return model.eval()


def language_neurons(num_layers: int = 2) -> dict[str, list[torch.Tensor]]:
    """The neurons built into :func:`language_neuron_model`, in the per-layer index layout."""
    empty = torch.zeros(0, dtype=torch.long)
    return {
        lang: [torch.arange(8 * k, 8 * k + 8)] + [empty] * (num_layers - 1)
        for k, lang in enumerate(LANGUAGE_CHARS)
    }
