"""`langneurons generate`: the same prompt through a base and its adapters, streamed, greedy or sampled."""

from __future__ import annotations

import re

import pytest

from fixtures import make_corpus, make_model_dir, make_neuron_set
from langneurons.cli import main
from langneurons.core.errors import LangNeuronsError
from langneurons.export import export
from langneurons.generate import generate, render_prompt
from langneurons.train import train


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    model = make_model_dir(root)
    run = train(model=str(model), method="neurons", language="mt", corpus=str(make_corpus(root)),
                neurons=str(make_neuron_set(root / "n.safetensors")), out=str(root / "run"), max_steps=3,
                window=32, batch_size=2, eval_steps=3, max_eval_tokens=64, lr=0.5)
    return model, run


def test_adapters_side_by_side_streamed(ws, capsys):
    model, run = ws
    pytest.importorskip("peft")
    lora = export(str(run), out=str(run.parent / "lora"))
    capsys.readouterr()
    outputs = generate(model=str(model), prompt="il bniedem", adapter=[str(run), str(lora)], with_base=True,
                       max_new_tokens=12)
    assert list(outputs) == [f"base ({model})", str(run), str(lora)]
    assert outputs[str(run)] == outputs[str(lora)]  # the exported LoRA writes exactly what the neurons write
    assert outputs[str(run)] != outputs[f"base ({model})"]  # lr 0.5: the adapter changes the greedy text
    printed = capsys.readouterr().out
    assert printed.index(f"=== {run} ===") < printed.index(outputs[str(run)]) < printed.index(f"=== {lora} ===")


def test_bf16_mixed_generates_under_autocast(ws, monkeypatch):
    import torch

    from langneurons.core import precision

    model, run = ws
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)
    seen = []
    real = torch.nn.Linear.forward
    monkeypatch.setattr(torch.nn.Linear, "forward", lambda self, x: seen.append(real(self, x).dtype) or real(self, x))
    out = generate(model=str(model), prompt="il", adapter=[str(run)], max_new_tokens=4, stream=False,
                   precision="bf16-mixed")
    assert len(out[str(run)]) > 0 and set(seen) == {torch.bfloat16}


def test_sampling_is_seeded(ws):
    model, _ = ws

    def sample(seed: int) -> str:
        out = generate(model=str(model), prompt="il", temperature=1.0, seed=seed, max_new_tokens=10, stream=False)
        return next(iter(out.values()))

    assert sample(0) == sample(0) and sample(0) != sample(1)


def test_translate_template_names_the_languages():
    assert render_prompt("hello", "translate", "eng_Latn", "mt") == (
        "Translate the following text from English into Maltese.\nEnglish: hello\nMaltese:")
    with pytest.raises(LangNeuronsError, match="needs --source and --target"):
        render_prompt("hello", "translate", "eng_Latn")


def test_bad_input_is_one_line(ws, capsys):
    model, _ = ws
    assert main(["generate", "--model", str(model), "--prompt", "x", "--template", "translate"]) == 2
    assert main(["generate", "--model", str(model), "--prompt", "x", "--max-new-tokens", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)


def test_a_missing_adapter_fails_before_anything_is_written(ws, tmp_path, capsys):
    model, _ = ws
    assert main(["generate", "--model", str(model), "--prompt", "x", "--with-base",
                 "--adapter", str(tmp_path / "nothere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: adapter ") and captured.err.count("\n") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--prompt", ""], "the prompt is empty"),
    (["--prompt", "   "], "the prompt is empty"),
    (["--prompt", "x", "--max-new-tokens", "1000000000000"], "exceeds the model's 256 positions; pass at most 256"),
    (["--prompt", "abc " * 100, "--max-new-tokens", "16"], r"the prompt \(\d+ tokens\) and --max-new-tokens 16 exceed"),
])
def test_a_prompt_or_length_the_model_cannot_hold_is_refused_before_weights_load(ws, monkeypatch, capsys, args,
                                                                                 message):
    import langneurons.generate as gen

    model, _ = ws
    monkeypatch.setattr(gen, "load_adapted", lambda *a, **k: pytest.fail("weights loaded before the check"))
    assert main(["generate", "--model", str(model), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert re.search(message, err), err


def test_a_prompt_that_fits_is_not_tokenized_twice_for_the_check(ws, monkeypatch):
    import langneurons.generate as gen

    model, _ = ws
    monkeypatch.setattr(gen, "load_tokenizer", lambda *a, **k: pytest.fail("tokenized for a prompt far inside"))
    assert len(generate(model=str(model), prompt="abc", max_new_tokens=2, stream=False)) == 1
