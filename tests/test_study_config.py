"""The shipped study config runs end to end on a tiny model: its protocol (all six methods, the learning-rate sweep,
three seeds, the budget, the Bible with UDHR forgetting) as shipped, on a small synthetic Bible and one target."""

import json
import random
import sqlite3

import pytest
import yaml

from fixtures import make_model_dir
from langneurons.corpus import bible
from langneurons.experiment.demo import DEMO_CONFIG
from langneurons.experiment.runner import experiment
from langneurons.neuronsets import NeuronSet

STUDY = DEMO_CONFIG.parent / "study-smollm2-bible.yaml"
CODES = {"4": "eng_Latn", "h": "swh_Latn", "b": "ben_Beng", "6": "ind_Latn"}
BOOKS = (1, 2, 8, 17, 21, 41, 45, 50, 59, 62, 66)  # train, valid and test books of the fixed split
WORDS = ("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "lambda", "zeta")


def make_bible(path) -> None:
    """A bible.db with the package's schema: four translations, a few verses of train, valid and test books."""
    rng = random.Random(0)
    rows = []
    for code in CODES:
        words = [w[: 3 + CODES[code].count("a")] + code for w in WORDS]
        for book in BOOKS:
            for chapter in (1, 2):
                for verse in range(1, 6):
                    text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 9))) + "."
                    rows.append((len(rows), code, book, chapter, verse, text))
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER, vNumber INTEGER, "
                   "vText TEXT)")
        db.executemany("INSERT INTO bible VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.close()


@pytest.fixture
def tiny_bible(tmp_path, monkeypatch):
    path = tmp_path / "bible.db"
    make_bible(path)
    monkeypatch.setattr(bible, "bible_database", lambda: path)
    monkeypatch.setattr(bible, "verify_database", lambda database, pin: None)
    return path


def test_the_study_config_runs_end_to_end_on_a_tiny_model(tmp_path, tiny_bible, monkeypatch):
    study = yaml.safe_load(STUDY.read_text())
    english = tmp_path / "english"  # the forgetting corpus: the UDHR is not fetched in tests
    english.mkdir()
    (english / "eng_Latn.txt").write_text("\n".join(f"everyone has the right number {i}." for i in range(40)))
    config = {
        **study,
        "model": str(make_model_dir(tmp_path)),
        "pool": list(CODES.values()),
        "num_targets": 1,
        "identify": {**study["identify"], "max_tokens": 400, "window": 32, "batch_size": 4},
        "train": {**study["train"], "max_steps": 2, "eval_steps": 1, "window": 32, "max_eval_tokens": 64},
        "evaluate": {**study["evaluate"], "window": 32, "max_bytes": 300, "continuation_items": 4,
                     "translation_items": 2, "max_gen_toks": 4, "forgetting_corpus": str(english)},
        "screen": {"window": 32, "max_bytes": 300},
        "analyses": ["training"],
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    experiment(str(path), out=str(out))

    study_json = json.loads((out / "study" / "study.json").read_text())
    (target,) = json.loads((out / "settings.json").read_text())["targets"]
    assert {r["method"] for r in study_json["rows"]} == set(study["methods"])
    assert all(r["seeds"] == study["seeds"] and r["target"] == target for r in study_json["rows"])
    selection = json.loads((out / "study" / "selection.json").read_text())
    for method, rates in study["train"]["lr"].items():
        assert selection[f"{method}-{target}"]["chosen"] in rates
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == len(study["methods"]) * (2 + len(study["seeds"]) - 1)  # 2 rates on seed 0, 2 more seeds
    assert NeuronSet.load(out / "neurons.safetensors").params["budget"] == study["identify"]["budget"]
    assert {p["b"] for p in study_json["paired"]} == set(study["methods"]) - {"neurons"}
    assert "Paired on the same seeds" in (out / "report.html").read_text()


def test_the_long_check_differs_from_the_study_only_in_length_seeds_and_rates():
    """The training-length check must measure the study's own setting trained longer: the same model, corpus,
    pool, neurons, batch, window, validation and scoring; each method at one rate of the study's grid."""
    study = yaml.safe_load(STUDY.read_text())
    long = yaml.safe_load((STUDY.parent / "study-smollm2-bible-long.yaml").read_text())
    for key in ("model", "corpus", "pool", "pivot", "identify", "methods", "evaluate"):
        assert long[key] == study[key], key
    assert len(long["targets"]) == 1 and long["targets"][0] in study["pool"] and long["seeds"] == [0]
    lengths = ("max_steps", "eval_steps", "early_stopping_patience", "early_stopping_threshold", "lr")
    assert {k: v for k, v in long["train"].items() if k not in lengths} == \
        {k: v for k, v in study["train"].items() if k not in lengths}
    assert long["train"]["max_steps"] > study["train"]["max_steps"] and long["train"]["early_stopping_patience"] > 0
    assert all(long["train"]["lr"][m] in study["train"]["lr"][m] for m in study["methods"])


def _tiny(study: dict, tmp_path, **overrides) -> dict:
    """A shipped study config on the tiny model and Bible: its protocol kept, every size shrunk."""
    english = tmp_path / "english"
    english.mkdir(exist_ok=True)
    (english / "eng_Latn.txt").write_text("\n".join(f"everyone has the right number {i}." for i in range(40)))
    return {
        **study,
        "model": str(make_model_dir(tmp_path)),
        "pool": list(CODES.values()),
        "identify": {**study["identify"], "max_tokens": 400, "window": 32, "batch_size": 4},
        "train": {**study["train"], "max_steps": 2, "eval_steps": 1, "window": 32, "max_eval_tokens": 64},
        "evaluate": {**study["evaluate"], "window": 32, "max_bytes": 300, "forgetting_corpus": str(english)},
        **({"screen": {**study["screen"], "window": 32, "max_bytes": 300}} if "screen" in study else {}),
        "ledger": str(tmp_path / "ledger"), "commit_ledger": False,
        **overrides,
    }


@pytest.mark.filterwarnings("ignore:budget .* not filled")  # LAPE finds a handful of neurons in a tiny model
def test_the_budget_study_config_runs_end_to_end_on_a_tiny_model(tmp_path, tiny_bible, monkeypatch):
    """Every arm of the budget study (neurons and random at each budget, LoRA at each rank) on one target, as
    shipped but for sizes (budgets 5x, as 0.1 % of the tiny model is less than a neuron): one neuron set per
    budget, each arm its own row with its own share, and the curves."""
    study = yaml.safe_load((STUDY.parent / "study-smollm2-budgets.yaml").read_text())
    study["budgets"] = [f"{5 * float(b.rstrip('%')):g}%" for b in study["budgets"]]
    monkeypatch.chdir(tmp_path)  # the ledger and outputs stay in the test's folder
    config = _tiny(study, tmp_path, targets=["swh_Latn"], seeds=study["seeds"][:2], sweep_extend=0,
                   analyses=["training"])
    path = tmp_path / "budgets.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    experiment(str(path), out=str(out))

    rows = json.loads((out / "study" / "study.json").read_text())["rows"]
    arms = [f"{m}@{b}" for m in ("neurons", "random") for b in study["budgets"]] + study["methods"][2:]
    assert [r["method"] for r in rows] == arms
    shares = {r["method"]: r["trainable_percent"]["mean"] for r in rows}
    for family in ("neurons", "random"):  # a larger budget trains more (up to what LAPE can fill)
        ordered = [shares[f"{family}@{b}"] for b in study["budgets"]]
        assert ordered == sorted(ordered) and ordered[0] < ordered[-1]
    assert shares["lora@r2"] < shares["lora@r8"] < shares["lora@r32"]
    for b in study["budgets"]:
        found = NeuronSet.load(out / f"neurons-{b.replace('%', 'pct')}.safetensors").params["budget"]
        assert found == b
    assert (out / "figures" / "study-budget-curves.png").is_file()
    assert (tmp_path / "ledger" / "ledger.json").is_file()


def test_the_multilingual_study_config_runs_end_to_end_on_a_tiny_model(tmp_path, tiny_bible, monkeypatch):
    """The Gemma study's protocol (six methods with LoRA at a rank, two targets of which one is non-Latin, the
    weights and alignment measurements) as shipped but for sizes, one seed and no added rates."""
    study = yaml.safe_load((STUDY.parent / "study-gemma-multilingual.yaml").read_text())
    assert len(study["targets"]) == 2 and any(not t.endswith("_Latn") for t in study["targets"])
    assert study["analyses"] == ["neurons", "training", "weights", "alignment"] and study["ledger"]
    monkeypatch.chdir(tmp_path)
    config = _tiny(study, tmp_path, targets=["swh_Latn", "ben_Beng"], seeds=study["seeds"][:1], sweep_extend=0)
    path = tmp_path / "gemma.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    experiment(str(path), out=str(out))

    rows = json.loads((out / "study" / "study.json").read_text())["rows"]
    assert {(r["method"], r["target"]) for r in rows} == {(m, t) for m in study["methods"] for t in config["targets"]}
    alignment = json.loads((out / "analysis" / "alignment.json").read_text())["models"]
    assert "base" in alignment and alignment["base"]["centred"] is True
    assert {lang for m in alignment.values() for lang in m["languages"]} == set(config["targets"])
    assert json.loads((out / "analysis" / "weights.json").read_text())
