"""The embedded Gemma-3-270M on real UDHR held-out articles (slow: ~1 minute on 2 CPU cores)."""

import pytest

from langneurons.evaluate import evaluate

pytestmark = pytest.mark.embedded


def test_gemma_knows_english_far_better_than_a_language_it_barely_saw(tmp_path):
    from langneurons.models import embedded_model_dir

    if not (embedded_model_dir("gemma-3-270m") / "config.json").is_file():
        pytest.skip("the embedded Gemma-3-270M is not converted yet (langneurons fetch)")
    # Yagua (yad_Latn, Peru): a few hundred thousand speakers and very little web text.
    data = evaluate(
        model="gemma-3-270m",
        languages=["eng_Latn", "yad_Latn"],
        out=str(tmp_path / "gemma.json"),
        suites=["intrinsic"],
        forgetting=False,
        max_bytes=1000,
    )
    eng, yad = data["metrics"]["eng_Latn"]["bits_per_byte"], data["metrics"]["yad_Latn"]["bits_per_byte"]
    # Measured on all five held-out articles: English 0.65, Yagua 3.32 bits per byte.
    assert eng < 1.2 and yad > 2.5 and yad > 3 * eng
