"""Shared test setup: a ``monkeypatch`` that refuses to patch a name where nothing reads it.

Splitting a module keeps its old path working by re-exporting the moved names, but code that moved reads them from
its new home: ``monkeypatch.setattr(sf2t.ops.fragment_pack, "_triton_kernel", fake)`` would then replace a name
nothing calls, and the test would pass without exercising what it claims. The fixture below stops such a patch
with the module to patch instead.
"""

from __future__ import annotations

import ast
import functools
import importlib
import sys
import types
from pathlib import Path

import pytest

_SF2T = Path(__file__).resolve().parents[1] / "sf2t"


@functools.cache
def _tree(path: str) -> ast.Module:
    return ast.parse(Path(path).read_text(), path)


@functools.cache
def _module_reads(path: str) -> tuple[frozenset[str], dict[str, str]]:
    """The global names a module's code loads, and the names it binds by ``from X import name`` (name -> X,
    resolved to an absolute module name where relative)."""
    tree = _tree(path)
    loads = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
    imported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                imported[a.asname or a.name] = node.module or ""
    return loads, imported


@functools.cache
def _read_elsewhere() -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """Over all of sf2t: every attribute name read (``mod.name``: may be read from the patched module at call
    time), and every ``(module, name)`` imported inside a function (read at call time too)."""
    attrs, late = set(), set()
    for path in _SF2T.rglob("*.py"):
        tree = _tree(str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                attrs.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and inner.module:
                        late.update((inner.module, a.name) for a in inner.names)
    return frozenset(attrs), frozenset(late)


def unread_reexport(module: types.ModuleType, name: str) -> str | None:
    """Why patching ``module.name`` changes nothing, or None when some code may read it there: a name ``module``
    only imports (``from sf2t.x import name``, a re-export), never loads, and that no sf2t code reads as an
    attribute or imports inside a function."""
    mod_name = getattr(module, "__name__", "")
    path = getattr(module, "__file__", None)
    if not (mod_name == "sf2t" or mod_name.startswith("sf2t.")) or not path or not path.endswith(".py"):
        return None
    loads, imported = _module_reads(path)
    if name not in imported or name in loads:
        return None
    attrs, late = _read_elsewhere()
    if name in attrs or (mod_name, name) in late:
        return None
    home = getattr(getattr(module, name, None), "__module__", None) or imported[name]
    return (
        f"monkeypatch.setattr({mod_name}, {name!r}): {mod_name} only re-exports {name} (from {imported[name]}) and "
        f"nothing reads it there, so the patch would change nothing; patch the module whose code reads it "
        f"(where {name} lives: {home})"
    )


class CheckedMonkeyPatch(pytest.MonkeyPatch):
    def setattr(self, target, name, *args, **kwargs):  # noqa: D102 - as pytest's
        if isinstance(target, str):  # setattr("sf2t.x.y.name", value)
            mod_path, _, attr = target.rpartition(".")
            module = sys.modules.get(mod_path)
            if module is None and mod_path.startswith("sf2t"):
                try:
                    module = importlib.import_module(mod_path)
                except ImportError:
                    module = None
        else:
            module, attr = target, name
        if isinstance(module, types.ModuleType) and isinstance(attr, str) and (why := unread_reexport(module, attr)):
            raise AssertionError(why)
        return super().setattr(target, name, *args, **kwargs)


@pytest.fixture
def monkeypatch():
    """pytest's monkeypatch, refusing a patch of a re-exported name nothing reads (see the module docstring)."""
    mp = CheckedMonkeyPatch()
    yield mp
    mp.undo()
