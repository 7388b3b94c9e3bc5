import pytest
import torch

from fixtures import char_tokenizer
from langneurons.corpus.hub import hub_offline
from langneurons.evaluate.harness import Harness, _metrics, unwrap
from langneurons.evaluate.udhr_tasks import (
    continuation_docs,
    continuation_task,
    split_half,
    translation_docs,
    translation_task,
    write_jsonl,
)

pytest.importorskip("lm_eval")

ARTICLES = [
    "Everyone has the right to rest and leisure, including reasonable limitation of working hours.",
    "Everyone has the right freely to participate in the cultural life of the community.",
    "Everyone is entitled to a social and international order in which rights can be realized.",
    "Everyone has duties to the community in which alone the free development of personality is possible.",
    "Nothing in this Declaration may be interpreted as implying any right to destroy these rights.",
]


def test_split_half_cuts_at_the_middle_space():
    first, second = split_half("one two  three\nfour")
    assert (first, second) == ("one two", "three four")
    assert split_half("single") == ("single", "")


def test_continuation_docs_have_the_true_half_at_the_gold_index():
    docs = continuation_docs(ARTICLES, n_choices=4)
    assert len(docs) == 5
    for i, doc in enumerate(docs):
        first, second = split_half(ARTICLES[i])
        assert doc["context"] == first
        assert len(doc["choices"]) == 4 and len(set(doc["choices"])) == 4
        assert doc["choices"][doc["gold"]] == second
    assert sorted({d["gold"] for d in docs}) == [0, 1, 2, 3]  # the answer's position rotates
    assert len(continuation_docs(ARTICLES[:2])[0]["choices"]) == 2


def test_translation_docs_align_by_key_and_skip_missing():
    docs = translation_docs({1: "a b", 2: "c\nd", 3: "x"}, {2: "C D", 1: "A B", 4: "y"}, "eng", "xyz")
    assert docs == [
        {"prompt": "eng: a b\nxyz:", "target": "A B"},
        {"prompt": "eng: c d\nxyz:", "target": "C D"},
    ]


@pytest.fixture(scope="module")
def harness():
    from fixtures import make_tiny_model

    return Harness(make_tiny_model("llama"), char_tokenizer(), batch_size=4)


def test_lm_eval_runs_a_local_multiple_choice_task_on_a_tiny_model(harness, tmp_path):
    docs = continuation_docs(ARTICLES)
    task = continuation_task("t_continuation", write_jsonl(tmp_path / "c.jsonl", docs))
    out = harness.run([task])
    assert set(out) == {"t_continuation"}
    assert set(out["t_continuation"]) == {"acc", "acc_norm"}
    assert 0.0 <= out["t_continuation"]["acc"] <= 1.0
    assert out["t_continuation"]["acc"] * 5 == pytest.approx(round(out["t_continuation"]["acc"] * 5))


def test_lm_eval_runs_a_local_translation_task_with_chrf(harness, tmp_path):
    src = dict(enumerate(ARTICLES))
    tgt = {k: v.upper() for k, v in src.items()}
    test = write_jsonl(tmp_path / "t.jsonl", translation_docs(src, tgt, "English", "Upper"))
    shot_docs = translation_docs({0: "ab cd"}, {0: "AB CD"}, "English", "Upper")
    shots = write_jsonl(tmp_path / "s.jsonl", shot_docs)
    task = translation_task("t_translation", test, shots, num_fewshot=1, max_gen_toks=8)
    out = harness.run([task], limit=2)["t_translation"]
    assert set(out) == {"chrf++", "bleu"}
    assert 0.0 <= out["chrf++"] <= 100.0


def test_metric_names_drop_filters_and_stderr():
    raw = {"alias": "x", "acc,none": 0.5, "acc_stderr,none": "N/A", "chrf++,strip": 12.0, "sample_len": 3}
    assert _metrics(raw) == {"acc": 0.5, "chrf++": 12.0}


def test_offline_flag_and_unwrap(monkeypatch, tiny_llama):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_offline()
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "0")
    assert not hub_offline()

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.base_model = inner

    assert unwrap(Wrapper(tiny_llama)) is tiny_llama
    assert unwrap(tiny_llama) is tiny_llama


def _head_rows(model):
    """Count the positions the LM head runs on."""
    rows = []
    model.get_output_embeddings().register_forward_hook(lambda m, args, out: rows.append(out.shape[0] * out.shape[1]))
    return rows


@pytest.mark.parametrize("batch_size", [1, 3])
def test_loglikelihood_runs_the_head_on_scored_positions_only_with_the_same_scores(batch_size):
    from lm_eval.models.huggingface import HFLM

    from fixtures import make_tiny_model
    from langneurons.evaluate.lm_eval_model import ScoredHeadLM

    # Contexts of several lengths, continuations of 1-4 tokens, ids ending in 0 (the padding id) included.
    requests = [(("c", "x"), list(range(1 + i, 20 + 3 * i)), [5, 9, 0][: 1 + i % 3] + [7] * (i % 2)) for i in range(7)]
    requests.append((("c", "x"), [3, 4, 0], [0]))
    scores = {}
    for cls in (HFLM, ScoredHeadLM):
        model = make_tiny_model("llama")
        rows = _head_rows(model)
        lm = cls(pretrained=model, tokenizer=char_tokenizer(), batch_size=batch_size, device="cpu")
        scores[cls] = (lm._loglikelihood_tokens(requests, disable_tqdm=True), sum(rows))
    (plain, plain_rows), (ours, our_rows) = scores[HFLM], scores[ScoredHeadLM]
    assert [flag for _, flag in ours] == [flag for _, flag in plain]
    assert [s for s, _ in ours] == pytest.approx([s for s, _ in plain], abs=1e-4)
    assert our_rows < plain_rows / 3


def test_an_unknown_batch_gets_every_position():
    from fixtures import make_tiny_model
    from langneurons.evaluate.lm_eval_model import ScoredHeadLM

    lm = ScoredHeadLM(pretrained=make_tiny_model("llama"), tokenizer=char_tokenizer(), batch_size=2, device="cpu")
    lm._scored_from, lm._lengths = {(1, 2, 3): 2}, [3]
    assert lm._keep(torch.tensor([[1, 2, 3], [1, 2, 0]])) is None
    assert lm._model_call(torch.tensor([[4, 5, 6]])).shape[1] == 3
