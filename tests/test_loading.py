import os

from langneurons.models import load_model, load_tokenizer
from train_helpers import make_model_dir


def test_tokenizer_is_parsed_once_until_its_files_change(tmp_path):
    path = str(make_model_dir(tmp_path))
    first = load_tokenizer(path)
    assert load_model(path)[1] is first  # the same files: no second parse
    config = os.path.join(path, "tokenizer_config.json")
    os.utime(config, ns=(os.stat(config).st_atime_ns, os.stat(config).st_mtime_ns + 10**9))
    second = load_tokenizer(path)
    assert second is not first
    assert second("abc")["input_ids"] == first("abc")["input_ids"]
    assert load_tokenizer(path) is second
