"""The harness stays small and shallow: a budget on its code lines and on the depth of its import chains."""

import ast
import io
import tokenize
from pathlib import Path

import lightning_adapruner

CORE = Path(lightning_adapruner.__file__).resolve().parent / "core"
PURE = ("methods", "functional")  # the methods and the pure functions: not the harness
MAX_HARNESS_CODE_LINES = 2300  # 2 000 (issue 15) + sharded per-sample state (issue 16: 280 lines, 2026-12-03)
MAX_IMPORT_LEVELS = 6


def harness_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if p.relative_to(CORE).parts[0] not in PURE)


def code_lines(source: str) -> int:
    """Lines holding code: no blank line, comment or docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and body:
            first = body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    return len(lines)


def node_of(module: str) -> str | None:
    """A core module's node in the import graph; the pure-function package counts as one."""
    prefix = "lightning_adapruner.core."
    if not module.startswith(prefix):
        return None
    name = module[len(prefix) :]
    return "functional" if name.split(".")[0] == "functional" else name


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(CORE).with_suffix("").parts).removesuffix(".__init__")


MODULES = {node_of(f"lightning_adapruner.core.{module_name(p)}") for p in CORE.rglob("*.py")} - {None}


def runtime_imports(path: Path) -> set[str]:
    """Core modules ``path`` imports when it runs (annotation-only imports under ``TYPE_CHECKING`` left out)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)  # also typing.TYPE_CHECKING
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    package = ".".join(("lightning_adapruner", *path.relative_to(CORE.parent).parent.parts))
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):  # `import lightning_adapruner.core.x`
            found.update(node_of(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""  # a relative import's package
            module = ".".join(p for p in (base, node.module or "") if p)
            for alias in node.names:  # `from core import functional as F` imports the package `core.functional`
                submodule = node_of(f"{module}.{alias.name}")
                found.add(submodule if submodule in MODULES else node_of(module))
    return found - {None}


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in CORE.rglob("*.py"):
        module = module_name(path)
        node = node_of(f"lightning_adapruner.core.{module}") if module != "__init__" else None
        if node is not None:
            graph.setdefault(node, set()).update(runtime_imports(path) - {node})
    return graph


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    best: dict[str, list[str]] = {}

    def chain(node: str, path: tuple[str, ...]) -> list[str]:
        assert node not in path, f"import cycle: {' -> '.join((*path, node))}"
        if node not in best:
            tails = [chain(n, (*path, node)) for n in sorted(graph.get(node, ()))]
            best[node] = [node, *max(tails, key=len, default=[])]
        return best[node]

    return max((chain(n, ()) for n in sorted(graph)), key=len)


def test_the_harness_holds_at_most_its_budget_of_code_lines():
    counts = {p.relative_to(CORE).as_posix(): code_lines(p.read_text()) for p in harness_files()}
    assert sum(counts.values()) <= MAX_HARNESS_CODE_LINES, sorted(counts.items(), key=lambda kv: -kv[1])


def test_the_core_is_at_most_six_import_levels_deep():
    chain = longest_chain(import_graph())
    assert len(chain) <= MAX_IMPORT_LEVELS, " -> ".join(chain)


def test_the_measures_see_what_they_measure():
    source = '"""Doc."""\n\nimport os  # why\n\n\ndef f():\n    """Doc\n    more."""\n    return os.sep\n'
    assert code_lines(source) == 3
    graph = {"a": {"b"}, "b": {"c"}, "c": set(), "d": {"c"}}
    assert longest_chain(graph) == ["a", "b", "c"]
    assert "callback" in import_graph()["adaptive_pruning"] and "functional" in import_graph()["method"]
