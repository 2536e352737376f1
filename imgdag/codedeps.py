"""The code a script runs: the script plus every imgdag module it imports, transitively.

Rules list these files as inputs, so Snakemake and DVC (whose deps come from the same inputs)
rerun a step when its code changes, and only then. A model built by name (imgdag.models) is
imported at run time, out of sight of the imports: a rule adds its model's files itself
(model_code_files).
"""
import ast
from functools import lru_cache
from pathlib import Path

from imgdag.model_registry import model_module

ROOT = Path(__file__).resolve().parents[1]


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _run_nodes(tree: ast.AST):
    """Every node of `tree` that can run: all but the bodies of `if TYPE_CHECKING:` blocks
    (imports for type names only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            todo += node.orelse
        else:
            todo += ast.iter_child_nodes(node)


@lru_cache(maxsize=None)
def _imports(path: Path) -> frozenset[Path]:
    names = []
    for node in _run_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from imgdag.pkg import sub` may name a submodule
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    found = set()
    for name in names:
        if name == "imgdag" or name.startswith("imgdag."):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # parent packages run their __init__ too
                module = _module_file(".".join(parts[:i]))
                if module is not None:
                    found.add(module)
    return frozenset(found)


def code_files(script) -> list[str]:
    """The script and the imgdag modules it imports, as sorted repo-relative paths."""
    seen, todo = set(), [ROOT / script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += _imports(path)
    return sorted(str(p.relative_to(ROOT)) for p in seen)


def model_code_files(name: str) -> list[str]:
    """The files of the module that builds registered model `name` and what it imports (none
    for a model a dependency builds, such as torchvision's AlexNet)."""
    module = _module_file(model_module(name)) if model_module(name).startswith("imgdag.") else None
    return code_files(module.relative_to(ROOT)) if module else []
