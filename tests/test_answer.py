"""The answer a study ends with: one narrow table per target and a sentence per axis saying whether the lead
is resolved (paired interval, else non-overlapping intervals; one seed resolves nothing)."""

from langneurons.evaluate.aggregate import mean_ci
from langneurons.evaluate.answer import answer

TARGET, OTHER = "tur_Latn", "eng_Latn"


def _row(method, gain, forgot, spread=0.01, seeds=(0, 1, 2)):
    def metric(delta):
        values = [delta + spread * k for k in range(-1, len(seeds) - 1)]
        return {"bits_per_byte": {"base": 2.0, "delta": mean_ci(values).to_dict()}}

    return {"method": method, "target": TARGET, "seeds": list(seeds), "trainable_percent": mean_ci([0.5]).to_dict(),
            "metrics": {TARGET: metric(-gain), OTHER: metric(forgot)}}


def _pair(a, b, label, diff, half):
    return {"a": a, "b": b, "target": TARGET, "label": label, "metric": "bits_per_byte",
            "difference": {"mean": diff, "half": half, "n": 3, "low": diff - half, "high": diff + half}}


def _study(rows, paired=()):
    return {"rows": rows, "paired": list(paired), "confidence": 0.95}


def test_a_paired_lead_is_resolved_when_its_interval_excludes_zero():
    rows = [_row("neurons", 0.60, 0.01), _row("random", 0.50, 0.03)]
    text = answer(_study(rows, [_pair("neurons", "random", TARGET, -0.10, 0.05),
                                _pair("neurons", "random", OTHER, -0.02, 0.03)]))
    assert "tur_Latn: neurons gained most, ahead of random by 0.100 ± 0.050 bits per byte (paired over 3 seeds:" \
           " resolved)." in " ".join(text.split("\n  "))
    assert "neurons forgot least on eng_Latn, ahead of random by 0.020 ± 0.030" in " ".join(text.split("\n  "))
    assert "not resolved" in text  # the forgetting lead's interval holds zero


def test_the_pair_is_found_in_either_order_and_unpaired_arms_compare_by_overlap():
    rows = [_row("lora", 0.70, 0.05, spread=0.001), _row("neurons", 0.60, 0.01, spread=0.001)]
    text = " ".join(answer(_study(rows, [_pair("neurons", "lora", TARGET, 0.10, 0.02)])).split("\n  "))
    assert "lora gained most, ahead of neurons by 0.100 ± 0.020 bits per byte (paired over 3 seeds: resolved)" in text
    assert "neurons forgot least on eng_Latn, ahead of lora by 0.040 bits per byte (resolved: the intervals do not" \
           " overlap)" in text


def test_one_seed_resolves_nothing_and_every_line_fits_a_terminal():
    rows = [_row("neurons@0.5%", 0.6, 0.01, seeds=(0,)), _row("a-very-long-arm@r32", 0.5, 0.02, seeds=(0,))]
    text = answer(_study(rows))
    lines = text.splitlines()
    flat = " ".join(text.split())
    assert "on one seed only, so not resolved" in flat and "one seed, so no interval" in flat and "±" not in text
    assert max(len(line) for line in lines) <= 100
    header = next(i for i, line in enumerate(lines) if line.startswith("arm"))
    assert lines[header].split() == ["arm", "trained", "%", "gain", "on", "tur_Latn", "forgot", "on", "eng_Latn"]
    assert lines[header + 1].split()[:3] == ["neurons@0.5%", "0.50", "+0.610"]  # its one seed: 0.6 + 0.01
