"""The three floors: foundations import nothing of ours above them; capabilities never import the top;
and no two modules import each other, however indirectly (imports inside functions count too)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "langneurons"
FOUNDATIONS = {"core", "models", "corpus", "neuronsets"}
CAPABILITIES = {"identify", "tuners", "adapters", "train", "evaluate", "analysis", "report", "export", "generate"}
TOP = {"experiment", "cli", "fetch", "__main__", "__init__"}
# Capability -> capability imports that are allowed: the tuner behind training and adapters, loading what a
# run wrote, plotting a report of evaluation results.
SIBLINGS = {("train", "tuners"), ("train", "adapters"), ("adapters", "tuners"), ("evaluate", "adapters"),
            ("analysis", "adapters"), ("report", "analysis"), ("report", "evaluate"), ("export", "adapters"), ("export", "tuners"),
            ("generate", "adapters")}


def floor(name: str) -> str:
    for label, members in (("foundation", FOUNDATIONS), ("capability", CAPABILITIES), ("top", TOP)):
        if name in members:
            return label
    raise AssertionError(f"langneurons.{name} is on no floor: add it to tests/test_layers.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Dotted langneurons modules (below the package) that ``path`` imports, anywhere in the file."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    package = list(parts[:-1])  # the package a relative import starts from (the same for __init__)
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "langneurons":
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import rundir` imports a module
                candidate = ".".join(target + [alias.name])
                found.add(candidate if candidate in known else ".".join(target))
        elif isinstance(node, ast.Import):
            found.update(".".join(a.name.split(".")[1:]) for a in node.names if a.name.startswith("langneurons."))
    return {name for name in found if name}


def room(module: str) -> str:
    return module.split(".")[0]


def test_every_module_is_on_a_floor_and_imports_point_down():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        own = room(module_name(path)) if module_name(path) else "__init__"
        for other in {room(m) for m in imported_modules(path)} - {own, "__version__"}:
            mine, theirs = floor(own), floor(other)
            ok = (mine == "top" or theirs == "foundation"
                  or (mine == theirs == "capability" and (own, other) in SIBLINGS))
            if not ok:
                bad.append(f"{path.relative_to(PACKAGE)} ({mine}) imports {other} ({theirs})")
    assert not bad, "\n".join(bad)


def _graph() -> dict[str, set[str]]:
    """Module -> the modules it imports; a package's __init__ stands for the package."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        if name:
            graph[name] = {m for m in imported_modules(path) if m != name and m != "__version__"}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None. A package re-exporting its submodules is an
    edge like any other, so a submodule importing its own package back is a cycle."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt in graph and not state.get(nxt):
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if not state.get(node):
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles_deferred_imports_included():
    cycle = find_cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"pkg": {"pkg.x"}, "pkg.x": {"core"}, "core": set()}) is None
    assert find_cycle({"pkg": {"pkg.x"}, "pkg.x": {"pkg"}}) == ["pkg", "pkg.x", "pkg"]
