"""``langneurons generate``: a quick look at what a base model and its adapters write for one prompt.

Each adapter (a run of any method, a neuron, peft or FFN adapter, a whole fine-tuned model) is loaded in
turn onto the base and writes a continuation of the same prompt, streamed to stdout under a header, so
that several languages' or methods' adapters compare side by side. Greedy by default; a temperature
above 0 samples with a fixed seed.
"""

from __future__ import annotations

from typing import Literal

import torch

from .adapters import detect, load_adapted
from .core.errors import LangNeuronsError
from .core.precision import Precision, autocast, resolve_precision
from .core.settings import checked
from .corpus import language_name, normalize_language
from .models import load_tokenizer, model_config

TEMPLATES = {
    "none": "{text}",
    "translate": "Translate the following text from {source} into {target}.\n{source}: {text}\n{target}:",
}
"""Prompt templates; ``translate`` names the languages in English, as FLORES-style evaluations do."""


def render_prompt(text: str, template: str = "none", source: str | None = None, target: str | None = None) -> str:
    """The prompt ``template`` makes of ``text`` (``translate`` needs both languages)."""
    if template not in TEMPLATES:
        raise LangNeuronsError(f"unknown template {template!r}; use one of {', '.join(TEMPLATES)}")
    if template == "none":
        return text
    if not (source and target):
        raise LangNeuronsError(f"--template {template} needs --source and --target (e.g. eng_Latn and mlt_Latn)")
    names = [language_name(normalize_language(code)) or code for code in (source, target)]
    return TEMPLATES[template].format(text=text, source=names[0], target=names[1])


@checked
def generate(
    *,
    model: str,
    prompt: str,
    adapter: list[str] | None = None,
    with_base: bool = False,
    template: Literal["none", "translate"] = "none",
    source: str | None = None,
    target: str | None = None,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    dtype: str = "float32",
    precision: Precision = "fp32",
    device: str = "cpu",
    stream: bool = True,
) -> dict[str, str]:
    """Write a continuation of PROMPT with the base model and each adapter, one after another.

    Args:
        model: Base model: embedded name (gemma-3-270m, smollm2-135m), hub id or local directory.
        prompt: The text to continue (or to translate, with --template translate).
        adapter: Runs or adapter folders to load onto the base, side by side in this order (default: the base
            alone).
        with_base: Also write the base model's continuation first, for comparison.
        template: none (the prompt as it is) or translate (a prompt naming --source and --target).
        source: Language of the prompt for --template translate (e.g. eng_Latn).
        target: Language to translate into for --template translate (e.g. mlt_Latn).
        max_new_tokens: Tokens to generate.
        temperature: 0 for greedy decoding; above 0 samples.
        top_p: Nucleus sampling mass (with --temperature above 0).
        seed: Seed for sampling.
        dtype: Weights' dtype: float32, bfloat16 or float16.
        precision: fp32, bf16-mixed (bfloat16 autocast where it is native) or auto (bf16-mixed where native).
        device: Device to run on (cpu, cuda, cuda:1, mps).
        stream: Print the text as it is generated.
    """
    if temperature < 0 or not 0 < top_p <= 1:
        raise LangNeuronsError("--temperature must be at least 0 and --top-p in (0, 1]; pass values in those ranges")
    precision = resolve_precision(precision, device)
    if not prompt.strip():
        raise LangNeuronsError("the prompt is empty; pass --prompt with the text to continue")
    text = render_prompt(prompt, template, source, target)
    _check_length(model, text, max_new_tokens)
    chosen: list[str | None] = list(adapter or [])
    for path in chosen:
        detect(path).adapter()  # a missing or unfinished adapter fails before any model loads or text prints
    if with_base or not chosen:
        chosen.insert(0, None)
    outputs = {}
    for path in chosen:
        name = path or f"base ({model})"
        if stream:
            print(f"=== {name} ===", flush=True)
        tuned, tokenizer = load_adapted(model, path, dtype=dtype, device=device)
        with autocast(precision, device):
            outputs[name] = _continue(tuned, tokenizer, text, max_new_tokens=max_new_tokens, temperature=temperature,
                                      top_p=top_p, seed=seed, stream=stream)
        if stream:
            print(flush=True)
    return outputs


def _check_length(model: str, text: str, max_new_tokens: int) -> None:
    """The prompt and the tokens to write must fit the model's positions: checked from its config and tokenizer,
    before any weights load (a 10^12-token request would otherwise start computing)."""
    config = model_config(model)
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not limit:
        return
    if max_new_tokens > limit:
        raise LangNeuronsError(f"--max-new-tokens {max_new_tokens:,} exceeds the model's {limit:,} positions; "
                               f"pass at most {limit:,}")
    if len(text.encode()) + 2 + max_new_tokens <= limit:  # a token holds a byte or more (+ BOS, a prefix)
        return
    prompt = len(load_tokenizer(model)(text)["input_ids"])
    if prompt + max_new_tokens > limit:
        raise LangNeuronsError(f"the prompt ({prompt:,} tokens) and --max-new-tokens {max_new_tokens:,} exceed the "
                               f"model's {limit:,} positions; shorten the prompt or pass --max-new-tokens "
                               f"{max(1, limit - prompt):,} or less")


@torch.inference_mode()
def _continue(model, tokenizer, text: str, *, max_new_tokens: int, temperature: float, top_p: float, seed: int,
              stream: bool) -> str:
    from transformers import TextStreamer

    device = next(model.parameters()).device
    inputs = tokenizer(text, return_tensors="pt").to(device)
    sampling = temperature > 0
    torch.manual_seed(seed)
    options = dict(do_sample=True, temperature=temperature, top_p=top_p) if sampling else dict(do_sample=False)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = model.generate(**inputs, max_new_tokens=max_new_tokens, pad_token_id=pad,
                         streamer=TextStreamer(tokenizer, skip_prompt=True) if stream else None, **options)
    return tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
