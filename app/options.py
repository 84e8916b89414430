"""Command-line options for an EssopConfig, made from the dataclass itself.

One option per field (`--rows`, `--lfsr-seed-x`, ...), its help taken from the field's docstring and its
default shown from the dataclass, so adding a field to EssopConfig adds the option with no second list to keep
in step. `--config FILE.json` loads a whole configuration; options given explicitly override it.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap
import typing
from functools import lru_cache
from pathlib import Path

from essop.config import EssopConfig


@lru_cache(maxsize=None)
def field_docs() -> dict[str, str]:
    """The docstring under each field of EssopConfig (attribute docstrings are not kept at run time, so they
    are read from the class source)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(EssopConfig)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _int(text: str) -> int:
    # Base 0 so seeds can be given the way they are written in hex (0xACE1).
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def add_config_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """Add `--config` and one option per EssopConfig field except those in `skip` (a command that sweeps a
    field has its own option for it). Every option defaults to None ("not given"), so that it overrides a
    --config file only when the user typed it."""
    group = parser.add_argument_group("array configuration (defaults are EssopConfig's)")
    group.add_argument("--config", type=Path, metavar="CONFIG.json",
                       help="load the configuration from a JSON file (as written by `essop generate`); "
                            "options given on the command line override its fields")
    hints = typing.get_type_hints(EssopConfig)
    docs = field_docs()
    for field in dataclasses.fields(EssopConfig):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{docs.get(field.name, '')} (default: {field.default!r})".replace("%", "%%")
        hint = hints[field.name]
        if hint is bool:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        elif int in (typing.get_args(hint) or (hint,)):
            group.add_argument(flag, dest=field.name, type=_int, default=None, metavar="INT", help=help_text)
        else:
            # Strings (sharing, scaling, output_format) pass through unchecked here, so that a bad value gets
            # EssopConfig's own message rather than a second, differently worded list of choices.
            group.add_argument(flag, dest=field.name, type=str, default=None, metavar="STR", help=help_text)


def config_from_args(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> EssopConfig:
    """The EssopConfig the options describe (fields in `skip` come from the file or the defaults). Raises EssopConfig's TypeError/ValueError on bad values, and
    ValueError for an unreadable --config file."""
    data: dict = {}
    if getattr(args, "config", None) is not None:
        try:
            data = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read configuration {str(args.config)!r}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"configuration {str(args.config)!r} must hold a JSON object, not {data!r}")
    for field in dataclasses.fields(EssopConfig):
        value = vars(args).get(field.name)
        if value is not None and field.name not in skip:
            data[field.name] = value
    return EssopConfig.from_dict(data)
