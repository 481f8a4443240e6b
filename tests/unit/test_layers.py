"""The layering rule, enforced: every import in edgepack/ goes down the layers (or stays in its package),
no modules import each other in a cycle, and only the output modules import rich.

An import counts wherever it is written: at module level, inside a function (a lazy import is still a
dependency) or under `TYPE_CHECKING`, and so does a string naming an edgepack module (a registry's
`"edgepack.devices.drivers.tflm"` for `importlib`, an f-string's `"edgepack.cli."` prefix, a
`python -m` target). Duck typing is not seen: a module handed an object it never imports. docs/ARCHITECTURE.md lists the modules in this order.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "edgepack"

# Lowest first. A unit is a top-level module (`errors`) or a package (`pipeline`). A unit may import
# units of a lower layer and itself, nothing of its own layer or above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "table", "units", "records")),
    ("services", ("fsutil", "resources", "native", "progress")),
    ("readers", ("analyze", "litert")),
    ("tasks", ("tasks",)),
    ("evaluation", ("evaluate",)),
    ("recipe", ("recipe",)),
    ("inputs", ("datasets", "models")),
    ("targets", ("devices",)),
    ("techniques", ("optimize", "convert")),
    ("validation", ("validate",)),
    ("bundle", ("bundle",)),
    ("gate", ("gate",)),
    ("summary", ("summary",)),
    ("report", ("report",)),
    ("pipeline", ("pipeline",)),
    ("front ends", ("init", "api")),
    ("inspection", ("inspect",)),
    ("cli", ("cli",)),
]
RANK = {unit: rank for rank, (_, units) in enumerate(LAYERS) for unit in units}
RICH_ALLOWED = {"edgepack.cli.output", "edgepack.cli.progress"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(module: str, path: Path) -> set[str]:
    """Every name `module` imports (edgepack modules resolved to the module, others as written)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from edgepack import errors` imports the module edgepack.errors
                names.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.update(named_module(node.value))
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            names.update(named_module(str(node.values[0].value).rstrip(".")))  # f"edgepack.cli.{name}"
    return names


def named_module(text: str) -> set[str]:
    """The module a string names for `importlib` or a registry (`"edgepack.devices.drivers.tflm"`,
    `"edgepack.x:attr"`): a dependency too, though no import statement shows it."""
    name = text.partition(":")[0]
    return {name} if name.startswith("edgepack.") and name in MODULES else set()


def resolve(name: str) -> str | None:
    """The edgepack module `name` is (or lies in), None for other packages."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


EDGES = {m: {t for n in imported(m, p) if (t := resolve(n)) is not None and t != m} for m, p in MODULES.items()}


def unit(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_unit_has_a_layer() -> None:
    units = {unit(m) for m in MODULES} - {""}
    assert units, "no modules found"
    missing = sorted(units - RANK.keys())
    assert not missing, f"give these a layer in LAYERS (and docs/ARCHITECTURE.md): {missing}"
    stale = sorted(RANK.keys() - units)
    assert not stale, f"LAYERS names units that do not exist: {stale}"


def upward(edges: dict[str, set[str]]) -> list[str]:
    """The imports of a unit at or above the importer's layer (the root `edgepack` module, the package's
    facade holding the version and `api` on first use, is outside the layers)."""
    return sorted(
        f"{a} -> {b} ({LAYERS[RANK[unit(a)]][0]} imports {LAYERS[RANK[unit(b)]][0]})"
        for a, targets in edges.items()
        for b in targets
        if unit(a) and unit(b) and unit(a) != unit(b) and RANK[unit(b)] >= RANK[unit(a)]
    )


def test_no_import_goes_up_a_layer() -> None:
    assert sum(map(len, EDGES.values())) > 100, "the import walk found almost nothing"
    found = upward(EDGES)
    assert not found, "imports up (or across) the layers:\n" + "\n".join(found)


def test_strings_naming_modules_are_dependencies(tmp_path: Path) -> None:
    source = tmp_path / "registry.py"
    source.write_text(
        "import importlib\n"
        'KINDS = {"tflm": "edgepack.devices.drivers.tflm", "run": "edgepack.pipeline.run:Pipeline"}\n'
        'def load(name):\n    return importlib.import_module(f"edgepack.cli.{name}")\n'
        'HELP = "edgepack.nothing.here and plain words"\n'
    )
    assert imported("edgepack.devices.registry", source) == {
        "importlib",
        "edgepack.devices.drivers.tflm",
        "edgepack.pipeline.run",
        "edgepack.cli",
    }
    assert "edgepack.devices.drivers.tflm" in EDGES["edgepack.devices.drivers"]  # the driver registry


def test_upward_flags_up_and_across_but_not_down() -> None:
    graph = {
        "edgepack.tasks.base": {"edgepack.pipeline.run"},  # up
        "edgepack.optimize.loop": {"edgepack.convert.tflite"},  # across one layer
        "edgepack.convert.lut": {"edgepack.devices.drivers"},  # down
        "edgepack.cli.app": {"edgepack.errors", "edgepack.cli.output"},  # down, and within its package
    }
    assert upward(graph) == [
        "edgepack.optimize.loop -> edgepack.convert.tflite (techniques imports techniques)",
        "edgepack.tasks.base -> edgepack.pipeline.run (tasks imports pipeline)",
    ]


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_cycles_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset("abc")]


def test_no_import_cycle() -> None:
    found = [sorted(c) for c in cycles(EDGES)]
    assert not found, "modules importing each other in a cycle:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_rich_only_in_the_output_modules() -> None:
    users = sorted(m for m, p in MODULES.items() if any(n == "rich" or n.startswith("rich.") for n in imported(m, p)))
    assert "edgepack.cli.output" in users, "the walk missed cli/output.py's rich imports"
    assert set(users) <= RICH_ALLOWED, (
        f"rich imported outside {sorted(RICH_ALLOWED)}: {sorted(set(users) - RICH_ALLOWED)}"
    )


ARCHITECTURE = PACKAGE.parent / "docs" / "ARCHITECTURE.md"


def listed_modules() -> list[str]:
    """The modules docs/ARCHITECTURE.md lists, in its order (rows starting with a path in backticks)."""
    rows = [line for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines() if line.startswith("| `edgepack")]
    return [module_name(PACKAGE.parent / row.split("`")[1]) for row in rows]


def trivial(path: Path) -> bool:
    """A package's `__init__.py` that holds nothing but a docstring (it needs no line of its own)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return path.name == "__init__.py" and all(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body
    )


def test_architecture_lists_every_module_once_by_layer() -> None:
    listed = listed_modules()
    doubled = sorted({m for m in listed if listed.count(m) > 1})
    assert not doubled, f"docs/ARCHITECTURE.md lists these more than once: {doubled}"
    needed = {m for m, p in MODULES.items() if not trivial(p)}
    missing, stale = sorted(needed - set(listed)), sorted(set(listed) - MODULES.keys())
    assert not missing, f"docs/ARCHITECTURE.md has no line for: {missing}"
    assert not stale, f"docs/ARCHITECTURE.md lists modules that do not exist: {stale}"
    ranks = [RANK[unit(m)] if unit(m) else -1 for m in listed]  # the root facade first
    out_of_order = [f"{m} ({LAYERS[r][0]})" for m, r, before in zip(listed, ranks, [-1, *ranks]) if r < before]
    assert not out_of_order, f"docs/ARCHITECTURE.md lists these below a higher layer: {out_of_order}"
