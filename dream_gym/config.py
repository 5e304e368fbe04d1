"""Typed, strict configuration: recipe sections are dataclasses, and the CLI is made of them.

A recipe (a TOML file in ``training/``) has top-level keys and sections; each section is
read by one or more dataclasses (``[vae]`` sets both the VAE's shape and its training).
:func:`check_recipe` refuses a key that none of them knows, naming it, the nearest allowed
key and the whole list, instead of silently dropping a misspelling. :func:`add_arguments`
turns a dataclass's fields into command-line flags with the fields' docstrings as help, so
the CLI offers every setting a recipe has.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import functools
import inspect
import textwrap
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["RecipeError", "check_keys", "check_recipe", "pick", "field_docs", "add_arguments",
           "TOP_LEVEL_KEYS"]

TOP_LEVEL_KEYS = ("name", "game", "family", "seed", "env_id")
"""Keys every recipe may set outside its sections (``env_id``: the Gymnasium id of a game
dream-gym does not know, derived from the env when the recipe runs; ``dream-gym build``
writes it)."""


class RecipeError(ValueError):
    """A recipe (or a config passed from code) has a key nothing reads, or lacks one."""


def _names(classes: Iterable[type]) -> list[str]:
    return sorted({f.name for cls in classes for f in dataclasses.fields(cls)})


def check_keys(keys: Iterable[str], allowed: Iterable[str], where: str) -> None:
    """Raise :class:`RecipeError` for the first key of ``keys`` not in ``allowed``."""
    allowed = sorted(set(allowed))
    for key in keys:
        if key not in allowed:
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise RecipeError(f"Unknown key {key!r} in {where}.{hint} Allowed keys: "
                              f"{', '.join(allowed)}.")


def check_recipe(recipe: Mapping[str, Any], sections: Mapping[str, tuple[type, ...]],
                 source: str = "the recipe") -> None:
    """Every top-level key and section of ``recipe`` is known, and every key of a section is
    a field of one of the dataclasses that read it."""
    check_keys([k for k, v in recipe.items() if not isinstance(v, dict)], TOP_LEVEL_KEYS,
               f"the top level of {source}")
    check_keys([k for k, v in recipe.items() if isinstance(v, dict)], sections,
               f"the sections of {source} (a [section] header)")
    for name, section in recipe.items():
        if isinstance(section, dict):
            check_keys(section, _names(sections[name]), f"[{name}] of {source}")


def pick(cls: type, section: Mapping[str, Any], **extra: Any) -> Any:
    """Build dataclass ``cls`` from the keys of ``section`` it has (sections are shared by
    several dataclasses; :func:`check_recipe` has refused keys that none of them has)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in {**section, **extra}.items() if k in names})


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (the attribute-docstring convention),
    with those of its base classes."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _scalar(tp: Any) -> tuple[type | None, bool]:
    """(the type argparse converts with, whether it is a bool) of a field's annotation;
    ``X | None`` and ``X | list[X]`` give X."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)
                and typing.get_origin(a) is not list]
        return _scalar(args[0]) if args else (None, False)
    if tp is bool:
        return bool, True
    if tp in (int, float, str):
        return tp, False
    return None, False


def add_arguments(parser: argparse.ArgumentParser, cls: type,
                  skip: Iterable[str] = ()) -> list[str]:
    """A ``--flag`` per field of dataclass ``cls`` (booleans as ``--x / --no-x``), default
    None so that only what the user gives overrides the recipe; returns the field names."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    added = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind, is_bool = _scalar(hints[f.name])
        if kind is None:
            continue
        flag = f"--{f.name.replace('_', '-')}"
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f"{docs.get(f.name, '')} (default: {default})".strip()
        help_text = help_text.replace("%", "%%")
        if is_bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=None, help=help_text)
        added.append(f.name)
    return added
