"""The three floors: foundations import nothing of ours above them; capabilities never import the top."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "langneurons"
FOUNDATIONS = {"errors", "atomic", "models", "corpus", "neuron_sets", "stats", "shipped", "distributed", "manifest",
               "locking"}
CAPABILITIES = {"record", "lape", "tuners", "train", "evaluate", "analysis", "report", "neuron_commands"}
TOP = {"experiment", "experiment_config", "demo", "cli", "cli_gen", "fetch", "build_sets", "__main__", "__init__"}
# Capability -> capability imports that are allowed: loading what a training run wrote, plotting a report.
SIBLINGS = {("train", "tuners"), ("evaluate", "train"), ("analysis", "train"), ("report", "analysis")}


def floor(name: str) -> str:
    for label, members in (("foundation", FOUNDATIONS), ("capability", CAPABILITIES), ("top", TOP)):
        if name in members:
            return label
    raise AssertionError(f"langneurons.{name} is on no floor: add it to tests/test_layers.py")


def imports(path: Path) -> set[str]:
    """Top-level langneurons modules that ``path`` imports (relative or absolute)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                target = base + (node.module.split(".") if node.module else [])
                names = [target[0]] if target else [alias.name for alias in node.names]
            elif node.module and node.module.startswith("langneurons."):
                names = [node.module.split(".")[1]]
            else:
                continue
            found.update(names)
    return found


def test_every_module_is_on_a_floor_and_imports_point_down():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for other in imports(path) - {own, "__version__"}:
            if other == "__init__" or other not in FOUNDATIONS | CAPABILITIES | TOP:
                continue
            mine, theirs = floor(own), floor(other)
            ok = (mine == "top" or theirs == "foundation"
                  or (mine == theirs == "capability" and (own, other) in SIBLINGS))
            if not ok:
                bad.append(f"{path.relative_to(PACKAGE)} ({mine}) imports {other} ({theirs})")
    assert not bad, "\n".join(bad)
