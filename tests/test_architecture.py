"""The shape docs/architecture.md promises, checked on the code itself: no import cycles, the
stages import only what they may (reading is pure, intake touches the database only in the
shared spool,
deciding never writes), and no module grows past the size one person reads in a sitting."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import PROJECT

PACKAGE = PROJECT / "maild"
MAX_LINES = 400          # the aim is ~300; past this a module owns more than one thing


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:      # Alembic's revisions are scripts, not modules
            continue
        parts = path.relative_to(PROJECT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every maild module ``name`` imports, at the top or inside a function (a lazy import is
    still a dependency); ``if TYPE_CHECKING`` imports are annotations only and not counted."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(node) for stmt in ast.walk(tree) if isinstance(stmt, ast.If)
            and getattr(stmt.test, "id", "") == "TYPE_CHECKING" for node in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    edges = graph()
    # A package __init__ that gathers its own modules is not a cycle with them.
    edges = {m: {d for d in deps if not (m.startswith(d + ".") and d in edges)} for m, deps in edges.items()}
    assert cycles(edges) == []


def test_cycles_are_found_when_there_are_some():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def reaches(edges: dict[str, set[str]], start: str, prefix: str) -> list[str]:
    return sorted(d for d in edges[start] if d == prefix or d.startswith(prefix + "."))


def test_reading_is_pure_and_intake_never_touches_the_database():
    edges = graph()
    for name in edges:
        if name.startswith("maild.reading.") and name != "maild.reading.prepare":
            # prepare is the parser process's job: it reads the policy to route new mail
            assert reaches(edges, name, "maild.acting") == [] and reaches(edges, name, "maild.deciding") == [], name
        if name.startswith("maild.intake."):
            assert reaches(edges, name, "maild.acting") == [], name


def test_of_intake_only_the_shared_spool_speaks_to_the_database():
    """With PostgreSQL, accepted mail goes into the shared spool's table before its 250 (issue
    16, docs/cluster.md); the SMTP side and the directory spool never see a database."""
    for name, path in modules().items():
        if name.startswith("maild.intake.") and name != "maild.intake.shared":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            used = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            used |= {n.module.split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module and not _type_checking_only(tree, n)}
            assert "sqlalchemy" not in used and "psycopg" not in used, name


def _type_checking_only(tree: ast.Module, node: ast.AST) -> bool:
    return any(isinstance(stmt, ast.If) and getattr(stmt.test, "id", "") == "TYPE_CHECKING"
               and node in ast.walk(stmt) for stmt in ast.walk(tree))


def test_deciding_never_writes():
    """Deciding reads the store; only acting/apply (through actions) writes."""
    edges = graph()
    writers = {"maild.acting.actions", "maild.acting.apply", "maild.acting.batch", "maild.acting.migrate"}
    for name in edges:
        if name.startswith("maild.deciding."):
            assert edges[name] & writers == set(), (name, edges[name] & writers)


def test_the_web_pages_never_reach_the_database_write_path():
    """maild web writes only into the spool and its own directory (issue 15)."""
    edges = graph()
    writers = {"maild.acting.actions", "maild.acting.apply", "maild.acting.batch", "maild.acting.migrate",
               "maild.worker", "maild.deciding.plan"}

    def closure(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for d in edges.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    for name in edges:
        if name.startswith("maild.web."):
            assert closure(name) & writers == set(), (name, closure(name) & writers)


def test_no_module_is_too_long():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
