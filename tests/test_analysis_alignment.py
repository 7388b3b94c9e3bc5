import pytest
import torch

from fixtures import make_tiny_model
from langneurons.analysis import alignment, alignment_scores, embed_texts, plot_alignment
from langneurons.analysis.alignment import spread_sample, wilson
from langneurons.core.errors import LangNeuronsError

BOS = 1


class CharTokenizer:
    """Characters -> ids 2..127 with a BOS token, enough to drive a tiny model without downloads."""

    pad_token_id = 0
    all_special_ids = [0, BOS]

    def __call__(self, texts, truncation=True, max_length=256):
        return {"input_ids": [[BOS] + [2 + ord(c) % 126 for c in t][: max_length - 1] for t in texts]}


TEXTS = {1: "All human beings are born free.", 2: "Everyone has the right to life.",
         3: "No one shall be held in slavery.", 4: "Everyone has the right to an effective remedy by tribunals."}


@pytest.fixture(scope="module")
def model():
    return make_tiny_model("llama")


def test_identical_inputs_align_perfectly(model):
    result = alignment(model, CharTokenizer(), {"eng_Latn": TEXTS, "mlt_Latn": dict(TEXTS)}, batch_size=3)
    scores = result["languages"]["mlt_Latn"]
    assert result["num_layers"] == 3 and scores["pairs"] == 4
    assert scores["parallel_cosine"] == pytest.approx([1.0] * 3, abs=1e-6)
    assert scores["retrieval_top1"] == [1.0, 1.0, 1.0]
    assert all(n < 1.0 for n in scores["nonparallel_cosine"])


def test_scores_on_known_vectors():
    source = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    target = torch.tensor([[[0.0, 2.0], [3.0, 0.0]]])  # each text is closer to the other's translation
    scores = alignment_scores(source, target, centre=False)
    assert {k: scores[k] for k in ("parallel_cosine", "nonparallel_cosine", "retrieval_top1")} == {
        "parallel_cosine": [0.0], "nonparallel_cosine": [1.0], "retrieval_top1": [0.0]}
    half = alignment_scores(source, torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]), centre=False)
    assert half["retrieval_top1"] == [0.5] and half["parallel_cosine"] == [0.5]


def test_centring_removes_a_shared_offset_that_hides_the_translations():
    g = torch.Generator().manual_seed(1)
    meaning = torch.randn(1, 40, 16, generator=g, dtype=torch.float64)
    source = meaning + 0.3 * torch.randn(1, 40, 16, generator=g, dtype=torch.float64) + 20 * torch.randn(16, generator=g)
    target = meaning + 0.3 * torch.randn(1, 40, 16, generator=g, dtype=torch.float64) + 20 * torch.randn(16, generator=g)
    raw, centred = alignment_scores(source, target, centre=False), alignment_scores(source, target)
    assert raw["parallel_cosine"][0] - raw["nonparallel_cosine"][0] < 0.05  # the offsets dominate every cosine
    assert centred["retrieval_top1"] == [1.0] and centred["nonparallel_cosine"][0] < 0.1
    shifted = alignment_scores(source + 5.0, target - 3.0)
    assert shifted["parallel_cosine"] == pytest.approx(centred["parallel_cosine"])  # blind to each side's offset


def test_padding_and_batching_do_not_change_states(model):
    texts = list(TEXTS.values())
    together = embed_texts(model, CharTokenizer(), texts, batch_size=4)
    alone = torch.cat([embed_texts(model, CharTokenizer(), [t]) for t in texts], dim=1)
    assert torch.allclose(together, alone, atol=1e-5)


def test_states_come_from_the_trunk_and_equal_the_full_models(model):
    calls = []
    hook = model.lm_head.register_forward_hook(lambda *args: calls.append(1))
    try:
        states = embed_texts(model, CharTokenizer(), ["abc"])
    finally:
        hook.remove()
    assert not calls  # the LM head is skipped
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([[BOS, *[2 + ord(c) % 126 for c in "abc"]]]), output_hidden_states=True)
    expected = torch.stack([h[0, 1:].mean(0) for h in hidden.hidden_states])  # BOS is not pooled
    assert torch.allclose(states[:, 0], expected, atol=1e-5)


def test_special_tokens_are_not_pooled(model):
    class NoSpecial(CharTokenizer):
        all_special_ids = [0]

    with_bos = embed_texts(model, NoSpecial(), ["abc"])
    without = embed_texts(model, CharTokenizer(), ["abc"])
    assert not torch.allclose(with_bos, without)


def test_only_shared_ids_are_compared(model):
    parallel = {"eng_Latn": TEXTS, "deu_Latn": {1: TEXTS[1], 3: TEXTS[3], 9: "extra"}}
    assert alignment(model, CharTokenizer(), parallel)["languages"]["deu_Latn"]["pairs"] == 2


def test_bad_input_gives_clear_errors(model):
    tok = CharTokenizer()
    with pytest.raises(LangNeuronsError, match="not parallel"):
        alignment(model, tok, {"eng_Latn": TEXTS, "mlt_Latn": {"a": "x", "b": "y"}})
    with pytest.raises(LangNeuronsError, match="pivot language"):
        alignment(model, tok, {"mlt_Latn": TEXTS}, pivot="eng_Latn")
    with pytest.raises(LangNeuronsError, match="no parallel texts for cym_Latn"):
        alignment(model, tok, {"eng_Latn": TEXTS, "mlt_Latn": TEXTS}, languages=["cym_Latn"])


def test_side_by_side_plot_is_written(model, tmp_path):
    parallel = {"eng_Latn": TEXTS, "mlt_Latn": {k: v[::-1] for k, v in TEXTS.items()}}
    results = {"base": alignment(model, CharTokenizer(), parallel),
               "neurons": alignment(make_tiny_model("llama", seed=1), CharTokenizer(), parallel)}
    paths = plot_alignment(results, tmp_path / "alignment")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.embedded
def test_gemma_aligns_translations_better_than_unrelated_text():
    from langneurons.models import load_model

    model, tokenizer = load_model("gemma-3-270m")
    parallel = {
        "eng_Latn": {1: "The cat sleeps on the warm roof.", 2: "I bought bread at the market this morning.",
                     3: "The train to the city leaves at nine."},
        "deu_Latn": {1: "Die Katze schläft auf dem warmen Dach.", 2: "Ich habe heute Morgen Brot auf dem Markt gekauft.",
                     3: "Der Zug in die Stadt fährt um neun ab."},
    }
    scores = alignment(model, tokenizer, parallel)["languages"]["deu_Latn"]
    middle = len(scores["parallel_cosine"]) // 2
    assert scores["parallel_cosine"][middle] > scores["nonparallel_cosine"][middle]
    assert scores["retrieval_top1"][middle] == 1.0


def test_intervals_against_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    source, target = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    scores = alignment_scores(source, target)
    a = torch.nn.functional.normalize(source[1].double() - source[1].double().mean(0), dim=-1)
    b = torch.nn.functional.normalize(target[1].double() - target[1].double().mean(0), dim=-1)
    parallel = [float(a[i] @ b[i]) for i in range(5)]
    nonparallel = [sum(float(a[i] @ b[j]) for j in range(5) if j != i) / 4 for i in range(5)]
    for values, mean, half in ((parallel, "parallel_cosine", "parallel_cosine_half"),
                               (nonparallel, "nonparallel_cosine", "nonparallel_cosine_half")):
        m = sum(values) / 5
        sd = (sum((v - m) ** 2 for v in values) / 4) ** 0.5
        assert scores[mean][1] == pytest.approx(m)
        assert scores[half][1] == pytest.approx(2.7764451 * sd / 5**0.5)  # t(0.975, 4 degrees of freedom)
    per_pair = scores["retrieval_top1"][1] * 5  # both directions averaged per pair: the pairs are the trials
    assert (scores["retrieval_top1_low"][1], scores["retrieval_top1_high"][1]) == pytest.approx(wilson(per_pair, 5))


def test_wilson_interval_known_values():
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)
    assert wilson(0, 500)[0] == pytest.approx(0.0, abs=1e-12) and wilson(0, 500)[1] == pytest.approx(0.00762, abs=1e-4)


def test_spread_sample_covers_the_split_and_depends_on_ids_only():
    ids = list(range(1000))
    sample = spread_sample(ids, 4)
    assert sample == [0, 250, 500, 750]
    assert spread_sample(ids, 1000) == ids and spread_sample(ids[:3], 500) == [0, 1, 2]
    assert spread_sample(ids, None) == ids


def test_max_pairs_samples_the_same_pairs_for_every_model(model):
    parallel = {"eng_Latn": {i: f"text number {i}" for i in range(9)},
                "deu_Latn": {i: f"Text Nummer {i}" for i in range(9)}}
    first = alignment(model, CharTokenizer(), parallel, max_pairs=3)
    second = alignment(make_tiny_model("llama", seed=1), CharTokenizer(), parallel, max_pairs=3)
    assert first["max_pairs"] == 3 and first["languages"]["deu_Latn"]["pairs"] == 3
    assert second["languages"]["deu_Latn"]["pairs"] == 3
    restricted = {lang: {i: texts[i] for i in (0, 3, 6)} for lang, texts in parallel.items()}
    assert alignment(model, CharTokenizer(), restricted, max_pairs=None)["languages"] == first["languages"]
    with pytest.raises(LangNeuronsError, match="max_pairs"):
        alignment(model, CharTokenizer(), parallel, max_pairs=1)


def test_plot_has_a_row_per_language_when_runs_cover_their_own_target(model, tmp_path):
    parallel = {"eng_Latn": TEXTS, "mlt_Latn": {k: v[::-1] for k, v in TEXTS.items()}, "deu_Latn": TEXTS}
    results = {"base": alignment(model, CharTokenizer(), parallel),
               "neurons-mlt": alignment(model, CharTokenizer(), parallel, languages=["mlt_Latn"])}
    from langneurons.analysis.alignment import panels

    assert panels(results) == [("mlt_Latn", ["mlt_Latn"]), ("deu_Latn", ["deu_Latn"])]
    assert panels({"base": results["base"]}) == [("mlt_Latn, deu_Latn", None)]
    old = {"base": {**results["base"], "languages": {
        lang: {k: v for k, v in r.items() if k in ("pairs", "parallel_cosine", "nonparallel_cosine", "retrieval_top1")}
        for lang, r in results["base"]["languages"].items()}}}
    for name, drawn in (("new", results), ("old", old)):  # files written before intervals still draw
        assert plot_alignment(drawn, tmp_path / name)[0].stat().st_size > 1000
