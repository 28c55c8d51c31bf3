"""The package's layout stays as the README's Development section draws it: which part may
import which, modules of one job (≤ 400 lines), functions of one step (≤ 60 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "advembed"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60

# Each part of the package and the parts it may import (its own modules always).  Nothing may
# import ``cli``; the algorithm core imports nothing above it.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "modes": set(),
    "losses": set(),
    "encoding": set(),
    "metrics": set(),
    "settings": {"errors"},
    "perturbation": {"errors"},
    "adversaries": {"perturbation", "errors"},
    "adapter": {"errors", "perturbation"},
    "provider": {"errors", "files"},
    "debian": {"errors", "provider"},
    "nltk_data": {"errors", "debian", "provider"},
    "words": set(),
    "hull": {"errors", "words", "nltk_data"},
    "files": set(),
    "runs": {"errors", "files"},
    "state_io": {"errors"},
    "data": {"errors", "provider", "settings", "debian"},
    "flags": {"settings", "perturbation", "data"},
    "decoders": set(),
    "models": {"errors", "provider", "vaa", "esim", "decoders"},
    "esim": {"errors", "provider"},
    "vaa": {"errors", "perturbation", "decoders"},
    "scratch": {"errors", "esim"},
    "mlm": {"errors", "files", "provider", "models", "data", "settings", "state_io"},
    "vda": {"errors", "settings", "losses", "mlm"},
    "inference": {"encoding", "modes"},
    "distributed": set(),
    "objectives": {"errors", "settings", "modes", "distributed", "words"},
    "methods": {"errors", "settings", "flags", "adversaries", "adapter", "perturbation",
                "losses", "objectives", "vda", "hull"},
    "tasks": {"errors", "data", "models", "decoders", "encoding", "metrics", "inference",
              "objectives", "scratch"},
    "training": {"errors", "settings", "flags", "data", "methods", "objectives", "tasks",
                 "runs", "files", "state_io", "distributed", "evaluation", "vaa", "vda"},
    "evaluation": {"errors", "settings", "flags", "data", "tasks", "runs", "adapter",
                   "adversaries", "objectives", "inference", "modes", "models", "provider",
                   "vaa", "mlm", "debian", "words", "nltk_data"},
    "report": {"errors", "runs", "tasks"},
    "docs": {"settings", "methods", "objectives", "evaluation", "training", "vda"},
    "cli": {"*"},
}


def _modules() -> list[Path]:
    return sorted(path for path in SRC.rglob("*.py") if path.name != "__init__.py"
                  or path.parent != SRC)


def _part(path: Path) -> str:
    relative = path.relative_to(SRC).parts
    return relative[0].removesuffix(".py")


def _is_part(name: str) -> bool:
    """A module or package of ``advembed`` (not a name such as ``__version__``)."""
    return (SRC / name).is_dir() or (SRC / f"{name}.py").is_file()


def _imported_parts(tree: ast.AST) -> set[str]:
    parts = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names]
                                     if node.module == "advembed" else [])
        else:
            continue
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "advembed" and len(pieces) > 1 and _is_part(pieces[1]):
                parts.add(pieces[1])
    return parts


def test_every_part_is_placed_in_the_layering():
    assert {_part(path) for path in _modules()} <= set(ALLOWED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_layering(path):
    part = _part(path)
    allowed = ALLOWED[part]
    if "*" in allowed:
        return
    imported = _imported_parts(ast.parse(path.read_text(encoding="utf-8"))) - {part}
    assert imported <= allowed, f"{part} imports {sorted(imported - allowed)}"


def test_nothing_imports_the_command_line():
    for path in _modules():
        if _part(path) != "cli":
            assert "cli" not in _imported_parts(ast.parse(path.read_text(encoding="utf-8"))), path


def test_modules_and_functions_stay_small():
    long_files, long_functions = [], []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(str(path.relative_to(SRC)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(SRC)}:{node.name} ({length})")
    assert not long_files, long_files
    assert not long_functions, long_functions


def test_the_layering_rejects_a_forbidden_import():
    """The check itself can fail: an objective importing a method is caught."""
    tree = ast.parse("def f():\n    from advembed.methods import FreeLB\n")
    assert _imported_parts(tree) - {"objectives"} - ALLOWED["objectives"] == {"methods"}


def test_every_commands_help_imports_neither_the_trainer_nor_sklearn():
    """``advembed COMMAND --help`` builds every parser from the settings dataclasses; it must
    not import ``transformers.trainer`` or scikit-learn (seconds of start-up each), which only
    training and scoring need."""
    import subprocess
    import sys

    probe = ("import sys, contextlib, io\n"
             "from advembed.cli import main\n"
             "for command in ('train', 'eval', 'attack', 'report', 'predict', 'mlm'):\n"
             "    with contextlib.suppress(SystemExit), \\\n"
             "            contextlib.redirect_stdout(io.StringIO()):\n"
             "        main([command, '--help'])\n"
             "print(sorted(m for m in ('transformers.trainer', 'sklearn') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
