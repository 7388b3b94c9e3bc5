import os
import shutil

from fixtures import make_model_dir
from langneurons.models import load_model, load_tokenizer


def test_tokenizer_is_parsed_once_until_its_files_change(tmp_path):
    path = str(make_model_dir(tmp_path))
    first = load_tokenizer(path)
    assert load_model(path)[1] is first  # the same files: no second parse
    config = os.path.join(path, "tokenizer_config.json")
    with open(config, "a") as f:
        f.write(" ")
    second = load_tokenizer(path)
    assert second is not first
    assert second("abc")["input_ids"] == first("abc")["input_ids"]
    assert load_tokenizer(path) is second


def test_a_fine_tuned_copy_with_the_same_tokenizer_shares_it(tmp_path):
    path = make_model_dir(tmp_path / "a")
    copy = shutil.copytree(path, tmp_path / "copy")
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("{", '{"note": 1,', 1))
    assert load_tokenizer(str(copy)) is load_tokenizer(str(path))
    (copy / "tokenizer_config.json").write_text((copy / "tokenizer_config.json").read_text() + " ")
    assert load_tokenizer(str(copy)) is not load_tokenizer(str(path))


def test_unchanged_tokenizer_files_are_read_once(tmp_path, monkeypatch):
    from pathlib import Path

    path = str(make_model_dir(tmp_path))
    load_tokenizer(path)
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or real(self))
    load_tokenizer(path)
    assert reads == []
    (Path(path) / "tokenizer_config.json").write_text((Path(path) / "tokenizer_config.json").read_text() + " ")
    load_tokenizer(path)
    assert "tokenizer_config.json" in reads
