"""The ``langneurons`` command: each command calls one typed function of the public API (``core/cli_gen.py``
builds the parser from its signature and docstring)."""

from __future__ import annotations

import argparse
import errno
import importlib
import math
import os
import re
import sys
import warnings

from . import __version__
from .core.cli_gen import add_command, call, plain
from .core.errors import LangNeuronsError
from .core.progress import set_quiet, transformers_bar

# command -> "module:function"; modules are imported only when their command runs.
COMMANDS: dict[str, str] = {
    "fetch": "langneurons.fetch:fetch",
    "record": "langneurons.identify.record:record",
    "identify": "langneurons.identify.lape:identify_files",
    "train": "langneurons.train:train",
    "merge": "langneurons.train:merge",
    "export": "langneurons.export:export",
    "generate": "langneurons.generate:generate",
    "evaluate": "langneurons.evaluate:evaluate",
    "compare": "langneurons.evaluate:compare",
    "analyze": "langneurons.analysis.commands:analyze",
    "report": "langneurons.report:report",
    "experiment": "langneurons.experiment.runner:experiment",
    "demo": "langneurons.experiment.demo:demo",
}
GROUPS: dict[str, dict[str, str]] = {
    "corpus": {"languages": "langneurons.corpus:list_languages"},
    "neurons": {
        "show": "langneurons.neuronsets.commands:neurons_show",
        "compare": "langneurons.neuronsets.commands:neurons_compare",
        "import": "langneurons.neuronsets.commands:neurons_import",
        "export": "langneurons.neuronsets.commands:neurons_export",
        "list": "langneurons.neuronsets.shipped:neurons_list",
        "build": "langneurons.identify.build:neurons_build",
    },
}


DESCRIPTION = """\
Make a language model better at a language it serves poorly by fine-tuning only the FFN neurons specific to
that language (LAPE), and measure whether that beats the usual ways to fine-tune and forgets less.

The usual sequence: record -> identify -> train -> evaluate -> report, or all of it from one config with
experiment. To see it run offline in minutes on the embedded model: langneurons demo"""

EXAMPLES: dict[str, str] = {
    "fetch": "langneurons fetch",
    "record": "langneurons record --model gemma-3-270m --languages mlt_Latn,cym_Latn,eng_Latn --out stats/",
    "identify": "langneurons identify stats/ --out neurons.safetensors --budget 0.5%",
    "train": "langneurons train --model gemma-3-270m --method neurons --neurons neurons.safetensors "
             "--language mlt_Latn --out runs/mlt-neurons",
    "merge": "langneurons merge runs/mlt-neurons --out merged/",
    "export": "langneurons export runs/mlt-neurons --out lora-adapter/",
    "generate": "langneurons generate --model gemma-3-270m --adapter runs/mlt-neurons --prompt 'Il-bniedem'",
    "evaluate": "langneurons evaluate --model gemma-3-270m --adapter runs/mlt-neurons --languages mlt_Latn "
                "--out results/",
    "compare": "langneurons compare results/base.json results/mlt-neurons.json",
    "analyze": "langneurons analyze --kind neurons --neurons neurons.safetensors --out analysis/",
    "report": "langneurons report experiments/demo",
    "experiment": "langneurons experiment configs/demo.yaml --dry-run",
    "demo": "langneurons demo --out experiments/demo",
    "corpus languages": "langneurons corpus languages --corpus bible",
    "neurons show": "langneurons neurons show neurons.safetensors",
    "neurons compare": "langneurons neurons compare neurons-a.safetensors neurons-b.safetensors",
    "neurons import": "langneurons neurons import published.pt --languages en,zh --model gemma-3-270m "
                      "--out neurons.safetensors",
    "neurons export": "langneurons neurons export neurons.safetensors --out neurons.pt",
    "neurons list": "langneurons neurons list",
    "neurons build": "langneurons neurons build --model smollm2-135m --languages mlt_Latn,eng_Latn",
}
"""One command line per command, shown under its options; test_cli parses each, so none drifts from the flags."""

# The one-line help of ``langneurons --help``, so that it imports no command (torch takes seconds);
# test_cli checks each against its function's docstring.
SUMMARIES: dict[str, str] = {
    "fetch": "Convert the embedded models to cached HF directories and fetch the UDHR (idempotent).",
    "record": "Record per-neuron activation statistics for each language into ``OUT/<language>.safetensors``.",
    "identify": "Select language-specific neurons (LAPE) from a directory of recorded statistics into a "
                "neuron-set file.",
    "train": "Fine-tune a model on one language's text with one method, into the run directory OUT.",
    "merge": "Merge a finished run's adapter into its base and save a plain Hugging Face model directory.",
    "export": "Export a trained run (or a neuron or LoRA adapter folder) as a LoRA adapter for serving.",
    "generate": "Write a continuation of PROMPT with the base model and each adapter, one after another.",
    "evaluate": "Evaluate a base model, an adapter or a merged model on held-out text and downstream tasks.",
    "compare": "Put several evaluation runs side by side in one Markdown table (deltas against a base run).",
    "analyze": "Check one of the paper's mechanistic claims on any model and method; write JSON and figures to "
               "``out``.",
    "report": "Assemble an experiment into one self-contained HTML page (figures embedded, no network).",
    "experiment": "Run a declarative experiment end to end; re-running skips finished steps and resumes the rest.",
    "demo": "Identify neurons over 40 UDHR languages, fine-tune the two the model serves worst, evaluate, report.",
    "corpus": "corpus sub-commands",
    "neurons": "neurons sub-commands",
}  # fmt: skip


def _load(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def build_parser(command: str | None = None, *, lazy: bool = False) -> argparse.ArgumentParser:
    """The parser; ``lazy`` imports only ``command``'s function (none for ``--help``), else all of them."""
    parser = argparse.ArgumentParser(prog="langneurons", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"langneurons {__version__}")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no library messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, target in COMMANDS.items():
        if not lazy or command == name:
            add_command(sub, name, _load(target), example=EXAMPLES.get(name))
        else:
            sub.add_parser(name, help=plain(SUMMARIES[name]))
    for group, members in GROUPS.items():
        gparser = sub.add_parser(group, help=plain(SUMMARIES[group]))
        gsub = gparser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name, target in members.items():
            if not lazy or command == group:
                add_command(gsub, name, _load(target), example=EXAMPLES.get(f"{group} {name}"))
            else:
                gsub.add_parser(name)
    return parser


def _quiet_libraries(quiet: bool) -> None:
    """Keep libraries' deprecation notices and load bars out of the user's output (all of it with --quiet)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if quiet or not sys.stderr.isatty():
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # download bars
    if quiet:
        warnings.simplefilter("ignore")
        set_quiet()


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
_IO_TEXT = re.compile(r"os error (\d+)|file write failed|No space left on device|Disk quota exceeded")


def disk_error(e: BaseException) -> str | None:
    """One line for a full disk or an unwritable output, found in ``e`` or what caused it; None otherwise.

    Libraries report these in their own ways (an ``OSError``, a safetensors error with "os error 28" in
    its text, torch's "file write failed"), so the whole chain is searched.
    """
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _NO_SPACE + _NOT_WRITABLE:
            where = f"{e.filename}: " if e.filename else ""
            if e.errno in _NO_SPACE:
                return f"{where}{e.strerror}; free some space and run the same command again (finished work is kept)"
            return f"{where}{e.strerror}; fix its permissions or choose a writable --out"
        found = _IO_TEXT.search(str(e))
        if found and not isinstance(e, OSError):
            code = int(found.group(1)) if found.group(1) else errno.ENOSPC
            return disk_error(OSError(code, os.strerror(code)))
        e = e.__cause__ or e.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    """The command line; a closed output pipe ends it quietly and Ctrl-C prints one line, wherever they come."""
    try:
        code = _main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where nothing could catch it
        return code
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `langneurons corpus languages | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail
        return 141


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        print(f"langneurons {__version__}")
        return 0
    command = next((a for a in argv if not a.startswith("-")), None)
    _quiet_libraries("--quiet" in (argv[: argv.index(command)] if command else argv))
    args = build_parser(command, lazy=True).parse_args(argv)
    if "transformers" in sys.modules:  # the command's module loaded it: route its bars through ours
        sys.modules["transformers"].utils.logging.set_tqdm_hook(transformers_bar)
    infinite = [name for name, value in vars(args).items() if isinstance(value, float) and not math.isfinite(value)]
    if infinite:  # nan and inf parse as floats but are never a meaningful setting
        print(f"error: --{infinite[0].replace('_', '-')} must be a finite number", file=sys.stderr)
        return 2
    try:
        call(args)
    except LangNeuronsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        message = disk_error(e)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0
