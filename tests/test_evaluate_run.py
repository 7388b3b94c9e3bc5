import json

import pytest
import torch

from fixtures import char_tokenizer, language_texts, save_tiny
from langneurons.adapters import detect
from langneurons.core.errors import LangNeuronsError
from langneurons.evaluate import run as run_module
from langneurons.evaluate.harness import unwrap
from langneurons.evaluate.run import evaluate, load_adapted, run_info
from langneurons.evaluate.suites import expand_suites

ENGLISH = [
    "Everyone has the right to life, liberty and security of person.",
    "No one shall be held in slavery or servitude.",
    "All are equal before the law and are entitled to equal protection.",
    "Everyone has the right to an effective remedy by the competent national tribunals.",
    "No one shall be subjected to arbitrary arrest, detention or exile.",
    "Everyone is entitled in full equality to a fair and public hearing.",
    "Everyone has the right to freedom of movement.",
]
SPLITS = {"train": (0, 1, 2), "valid": (3,), "test": (4, 5, 6)}


class FakeCorpus:
    """A parallel corpus of seven documents per language: 0-2 train, 3 valid, 4-6 test."""

    name = "udhr"
    version = "fake"

    def __init__(self):
        synthetic = {lang: language_texts(seed=1, n=7, length=40)[lang] for lang in ("aaa_Latn", "bbb_Latn")}
        self.docs = {"eng_Latn": ENGLISH, **synthetic, "nnn_Latn": ENGLISH[:3]}

    def languages(self):
        return sorted(self.docs)

    def parallel(self, language, split="train"):
        if language not in self.docs:
            raise LangNeuronsError(f"language {language!r} is not in corpus udhr")
        return {n: self.docs[language][n] for n in SPLITS[split] if n < len(self.docs[language])}

    def texts(self, language, split="train"):
        return list(self.parallel(language, split).values())


@pytest.fixture
def setup(monkeypatch, tiny_llama):
    calls = []

    def fake_load(model, adapter, *, dtype, device):
        calls.append(model)
        return tiny_llama, char_tokenizer()

    monkeypatch.setattr("langneurons.corpus.load_corpus", lambda spec: FakeCorpus(), raising=False)
    monkeypatch.setattr(run_module, "load_adapted", fake_load)
    monkeypatch.setattr(run_module, "model_config", lambda model: tiny_llama.config)
    return calls


def _evaluate(out, **kw):
    kw = {"model": "tiny", "languages": ["aaa_Latn", "eng_Latn"], "out": str(out), "max_gen_toks": 8, "window": 256, **kw}
    return evaluate(**kw)


def test_offline_suites_end_to_end_and_reuse(setup, tmp_path):
    pytest.importorskip("lm_eval")
    out = tmp_path / "base.json"
    data = _evaluate(out)
    m = data["metrics"]
    assert list(m) == ["aaa_Latn", "eng_Latn", "python"]
    for label in m:
        assert 0 < m[label]["bits_per_byte"] < 20 and m[label]["perplexity"] > 1
    assert 0 <= m["aaa_Latn"]["udhr_continuation_acc"] <= 1
    assert 0 <= m["eng_Latn"]["udhr_continuation_acc_norm"] <= 1
    translation = {"udhr_from_eng_Latn_chrf++", "udhr_to_eng_Latn_chrf++", "udhr_from_eng_Latn_bleu"}
    assert translation <= set(m["aaa_Latn"])
    assert "udhr_from_eng_Latn_chrf++" not in m["eng_Latn"]  # no translation into itself
    assert data["run"] == {
        "name": "tiny", "method": "base", "model": "tiny", "adapter": None, "target_language": None
    }
    assert data["skipped"] == [] and data["deactivation"] is None
    assert json.loads(out.read_text())["metrics"] == m
    assert "| tiny | base |" in (tmp_path / "base.md").read_text()
    assert setup == ["tiny"]

    again = _evaluate(out)  # everything is cached: the model is not loaded again
    assert setup == ["tiny"] and again["metrics"] == m
    _evaluate(out, languages=["aaa_Latn", "bbb_Latn", "eng_Latn"], suites=["intrinsic"])
    assert setup == ["tiny", "tiny"]
    assert "bits_per_byte" in json.loads(out.read_text())["metrics"]["bbb_Latn"]


def test_bits_per_byte_matches_score_texts_on_the_held_out_split(setup, tmp_path, tiny_llama):
    from langneurons.evaluate.intrinsic import score_texts

    data = _evaluate(tmp_path / "r.json", suites=["intrinsic"], forgetting=False, languages=["aaa_Latn"])
    held = list(FakeCorpus().parallel("aaa_Latn", "test").values())
    expected = score_texts(tiny_llama, char_tokenizer(), held).bits_per_byte
    assert list(data["metrics"]) == ["aaa_Latn"]
    assert data["metrics"]["aaa_Latn"]["bits_per_byte"] == pytest.approx(expected, rel=1e-6)


def test_online_suites_offline_are_skipped_in_one_line(setup, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = _evaluate(tmp_path / "r.json", suites=["paper"], languages=["aaa_Latn"])
    lines = [line for line in capsys.readouterr().out.splitlines() if "offline" in line]
    assert len(lines) == 1 and lines[0].startswith("offline: skipping 9 hub task(s)")
    tasks = sorted(s["task"] for s in data["skipped"])
    english = ["arc_challenge", "arc_easy", "hellaswag", "mmlu", "piqa", "winogrande"]
    assert tasks == sorted(english + ["belebele", "flores_translation", "sib200"])
    assert data["metrics"] == {} and setup == []  # nothing ran, nothing scored as zero


def test_language_without_held_out_text_is_a_clear_skip(setup, tmp_path):
    data = _evaluate(tmp_path / "r.json", suites=["intrinsic"], languages=["nnn_Latn"], forgetting=False)
    assert data["metrics"] == {}
    assert data["skipped"][0]["task"] == "intrinsic" and "no held-out text" in data["skipped"][0]["reason"]


def test_bad_input_is_a_one_line_error(setup, tmp_path):
    with pytest.raises(LangNeuronsError, match="unknown suite 'nope'"):
        _evaluate(tmp_path / "r.json", suites=["nope"])
    with pytest.raises(LangNeuronsError, match="not in corpus"):
        _evaluate(tmp_path / "r.json", languages=["zzz_Latn"])
    with pytest.raises(LangNeuronsError, match="--neurons"):
        _evaluate(tmp_path / "r.json", suites=["deactivation"])
    with pytest.raises(LangNeuronsError, match="not a directory"):
        _evaluate(tmp_path / "r.json", adapter=str(tmp_path / "missing"))
    with pytest.raises(LangNeuronsError, match="--max-bytes must be 0 \\(no cap\\) or more, not -5"):
        _evaluate(tmp_path / "r.json", max_bytes=-5)
    with pytest.raises(LangNeuronsError, match="--window 100000 exceeds the model's .* positions"):
        _evaluate(tmp_path / "r.json", window=100_000)
    assert setup == [] and not list(tmp_path.iterdir())


def test_unknown_lm_eval_task_is_an_error(setup, tmp_path):
    pytest.importorskip("lm_eval")
    with pytest.raises(LangNeuronsError, match="unknown lm-eval task.*no_such_task"):
        _evaluate(tmp_path / "r.json", tasks=["no_such_task", "piqa"])
    assert setup == []


def test_flores_corpus_offline_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LangNeuronsError, match="corpus flores needs the Hugging Face hub"):
        _evaluate(tmp_path / "r.json", corpus="flores")


def test_max_bytes_is_an_exact_budget_cut_at_a_space():
    from langneurons.evaluate.planner import cap_bytes

    texts = ["ħelu ħafna", "second text here", "third"]  # 12, 16 and 5 bytes
    assert cap_bytes(texts, 40) == texts and cap_bytes(texts, 0) == texts and cap_bytes(texts, None) == texts
    assert cap_bytes(texts, 12) == ["ħelu ħafna"]
    assert cap_bytes(texts, 25) == ["ħelu ħafna", "second text"]  # 13 bytes left: "second text h", cut at the space
    assert cap_bytes(texts, 3) == ["ħe"] and cap_bytes(texts, 1) == ["ħ"]  # never half a character; never nothing
    assert sum(len(t.encode()) for t in cap_bytes(["word " * 400], 500)) <= 500


def test_suite_groups():
    assert expand_suites(["offline"]) == ["intrinsic", "udhr"]
    english = ["mmlu", "hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge"]
    assert expand_suites(["english"]) == english
    paper = ["flores", "belebele", "sib200", *english]
    assert expand_suites(["intrinsic", "paper", "intrinsic"]) == ["intrinsic", *paper]
    assert expand_suites(["piqa", "udhr"]) == ["piqa", "udhr"]


def test_peft_adapter_loads_in_memory_and_a_mismatch_is_refused(tmp_path, tiny_llama):
    peft = pytest.importorskip("peft")
    from fixtures import make_tiny_model

    base_dir = str(save_tiny(tmp_path / "base", tiny_llama))
    lora = peft.get_peft_model(make_tiny_model("llama"), peft.LoraConfig(r=2, target_modules=["up_proj"]))
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_()
    lora.save_pretrained(tmp_path / "run" / "adapter")
    model, _ = load_adapted(base_dir, str(tmp_path / "run"), dtype="float32", device="cpu")
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, lora(ids).logits, atol=1e-5)
    assert run_info(base_dir, str(tmp_path / "run"), None, None)["method"] == "lora"
    found = detect(str(tmp_path / "run"))
    assert (found.path, found.kind) == (tmp_path / "run" / "adapter", "peft")

    wide = make_tiny_model("llama")
    wide.config.intermediate_size = 96
    other = peft.get_peft_model(type(wide)(wide.config), peft.LoraConfig(r=2, target_modules=["up_proj"]))
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(LangNeuronsError, match="does not fit model"):
        load_adapted(base_dir, str(tmp_path / "other"), dtype="float32", device="cpu")


def test_deactivation_suite_reads_a_neuron_set_file(monkeypatch, tmp_path):
    from fixtures import language_neuron_model, language_neurons, neuron_set

    tok = char_tokenizer()
    model = language_neuron_model(tok)
    monkeypatch.setattr("langneurons.corpus.load_corpus", lambda spec: FakeCorpus())
    monkeypatch.setattr(run_module, "load_adapted", lambda *a, **k: (model, tok))
    monkeypatch.setattr(run_module, "model_config", lambda _: model.config)
    neurons = {k: v for k, v in language_neurons().items() if k in ("aaa_Latn", "bbb_Latn")}
    path = tmp_path / "set.safetensors"
    neuron_set(neurons).save(path)
    langs = ["aaa_Latn", "bbb_Latn"]
    data = _evaluate(tmp_path / "r.json", suites=["deactivation"], neurons=str(path), languages=langs)
    d = data["deactivation"]
    assert d["languages"] == ["aaa_Latn", "bbb_Latn"] and d["diag_minus_offdiag"] > 0.5
    assert "largest change of its row in 2 of 2 rows; mean diagonal minus mean off-diagonal" in (tmp_path / "r.md").read_text()

    wrong = tmp_path / "wrong.safetensors"
    three_layers = {k: v + [v[0]] for k, v in neurons.items()}
    neuron_set(three_layers, num_layers=3).save(wrong)
    with pytest.raises(LangNeuronsError, match="the neuron set is for 3 layers"):
        _evaluate(tmp_path / "r2.json", suites=["deactivation"], neurons=str(wrong), languages=langs)


def test_neuron_adapter_loads_in_memory_and_refuses_another_base(tmp_path, tiny_llama):
    neurons = pytest.importorskip("langneurons.tuners.neurons")
    from fixtures import make_tiny_model
    from langneurons.models import load_model

    base_dir = str(save_tiny(tmp_path / "base", tiny_llama))
    base, _ = load_model(base_dir)
    config = neurons.NeuronTuningConfig(languages=["mlt_Latn"])
    tuned = neurons.get_neuron_model(base, config, {"mlt_Latn": [torch.arange(4), torch.arange(2, 6)]})
    with torch.no_grad():
        for _, p in tuned.named_deltas():
            p.normal_()
    tuned.save_pretrained(tmp_path / "adapter")
    model, _ = load_adapted(base_dir, str(tmp_path / "adapter"), dtype="float32", device="cpu")
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        expected = tuned(input_ids=ids).logits
        assert torch.allclose(unwrap(model)(ids).logits, expected, atol=1e-5)
        assert not torch.allclose(tiny_llama(ids).logits, expected, atol=1e-3)
    info = run_info(base_dir, str(tmp_path / "adapter"), None, None)
    assert (info["method"], info["target_language"]) == ("neurons", "mlt_Latn")

    other_dir = str(save_tiny(tmp_path / "other", make_tiny_model("llama", seed=1)))
    with pytest.raises(LangNeuronsError, match="differ from the base"):
        load_adapted(other_dir, str(tmp_path / "adapter"), dtype="float32", device="cpu")


def test_a_fine_tuned_model_folder_passed_as_adapter_replaces_the_base(tmp_path, tiny_llama):
    from fixtures import make_tiny_model

    base_dir = str(save_tiny(tmp_path / "base", tiny_llama))
    tuned = make_tiny_model("llama", seed=3)
    tuned.save_pretrained(tmp_path / "run" / "model")  # no tokenizer: the base's is used
    model, tok = load_adapted(base_dir, str(tmp_path / "run"), dtype="float32", device="cpu")
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, tuned(ids).logits, atol=1e-6)
    assert tok.convert_tokens_to_ids("a") == char_tokenizer().convert_tokens_to_ids("a")
    assert run_info(base_dir, str(tmp_path / "run"), None, None)["method"] == "fine-tuned"

    make_tiny_model("gpt2").save_pretrained(tmp_path / "gpt2")
    with pytest.raises(LangNeuronsError, match="holds a gpt2 model but the base"):
        load_adapted(base_dir, str(tmp_path / "gpt2"), dtype="float32", device="cpu")


def test_a_training_run_of_any_method_is_evaluated_in_memory(tmp_path):
    from fixtures import make_corpus, make_model_dir
    from langneurons.train import train

    model_dir, corpus = str(make_model_dir(tmp_path)), str(make_corpus(tmp_path))
    run = tmp_path / "ffn-mt"
    train(model=model_dir, method="ffn", language="mt", corpus=corpus, out=str(run), max_steps=2, window=32,
          batch_size=2, eval_steps=2, max_tokens=256, max_eval_tokens=64, lr=1e-2)  # fmt: skip
    common = {"model": model_dir, "languages": ["mt"], "corpus": corpus, "suites": ["intrinsic"]}
    common |= {"forgetting": False, "window": 64}
    base_out = str(tmp_path / "base.json")
    base = evaluate(out=base_out, **common)
    tuned = evaluate(adapter=str(run), out=str(tmp_path / "ffn.json"), baseline=base_out, **common)
    assert tuned["run"]["method"] == "ffn" and tuned["run"]["target_language"] == "mlt_Latn"
    assert tuned["run"]["name"] == "ffn-mt"
    assert tuned["metrics"]["mlt_Latn"]["bits_per_byte"] != base["metrics"]["mlt_Latn"]["bits_per_byte"]
    assert "| ffn-mt | ffn |" in (tmp_path / "ffn.md").read_text()


def test_forgetting_english_comes_from_the_forgetting_corpus(setup, tmp_path, tiny_llama, monkeypatch):
    """Trained on one corpus, forgetting is scored on another's English (outside the training domain)."""
    from langneurons.evaluate.intrinsic import score_texts

    other = FakeCorpus()
    other.name, other.docs = "other", {"eng_Latn": ENGLISH[::-1]}
    monkeypatch.setattr("langneurons.corpus.load_corpus", lambda spec: other if spec == "other" else FakeCorpus())
    data = _evaluate(tmp_path / "r.json", suites=["intrinsic"], languages=["aaa_Latn"], forgetting_corpus="other")
    held = list(other.parallel("eng_Latn", "test").values())
    expected = score_texts(tiny_llama, char_tokenizer(), held).bits_per_byte
    assert data["metrics"]["eng_Latn"]["bits_per_byte"] == pytest.approx(expected, rel=1e-6)
    assert data["settings"]["forgetting_corpus"] == "other"
    other.docs = {"aaa_Latn": ENGLISH}
    with pytest.raises(LangNeuronsError, match="has no eng_Latn for the forgetting score"):
        _evaluate(tmp_path / "r2.json", suites=["intrinsic"], languages=["aaa_Latn"], forgetting_corpus="other")


def test_bf16_mixed_scores_near_fp32_and_says_so(setup, tmp_path, monkeypatch):
    from langneurons.core import precision

    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)
    kw = dict(suites=["intrinsic"], forgetting=False, languages=["aaa_Latn"])
    fp32 = _evaluate(tmp_path / "fp32.json", **kw)
    bf16 = _evaluate(tmp_path / "bf16.json", precision="bf16-mixed", **kw)
    assert (fp32["settings"]["precision"], bf16["settings"]["precision"]) == ("fp32", "bf16-mixed")
    a, b = fp32["metrics"]["aaa_Latn"]["bits_per_byte"], bf16["metrics"]["aaa_Latn"]["bits_per_byte"]
    assert a != b and abs(a - b) < 0.01 * a  # it did run in bf16, within 1 % on a tiny random model
    assert "Precision: bf16-mixed." in (tmp_path / "bf16.md").read_text()
    again = _evaluate(tmp_path / "bf16.json", precision="fp32", **kw)  # another precision is not reused
    assert again["metrics"]["aaa_Latn"]["bits_per_byte"] == a
