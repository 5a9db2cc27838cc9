"""Command lines read by tyro from dataclasses: a field is a flag (``--num-epochs``, a nested
dataclass's ``--optimizer.lr``), its docstring the flag's help, a ``Literal`` its choices; every
error one line. No JAX, so that any command (and a benchmark's gensim process) may import it."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import itertools
import re
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import docstring_parser
import tyro
from tyro.constructors import (
    MISSING,
    MISSING_NONPROP,
    ConstructorRegistry,
    StructConstructorSpec,
    StructFieldSpec,
    StructTypeInfo,
)

T = TypeVar("T")

FLATTENED = tyro.conf.arg(name="")
"""A nested dataclass whose fields are flags without its name (``Annotated[Config,
FLATTENED]``: ``--num-epochs``, not ``--config.num-epochs``)."""
Positional = tyro.conf.Positional


def cli(
    cls: type[T],
    argv: Sequence[str] | None = None,
    *,
    description: str,
    defaults: dict[type, Any] | None = None,
    hidden: dict[type, tuple[str, ...]] | None = None,
    renamed: dict[str, str] | None = None,
    in_flags: Callable[[str], str] = str,
    prog: str | None = None,
) -> T:
    """``cls`` from the command line ``argv`` (default ``sys.argv[1:]``), described by
    ``description`` in ``--help``. ``defaults``: by a nested dataclass's type, an instance whose
    values are the defaults of its flags (a preset's Config); ``hidden``: by type, fields that
    are not flags (they keep their defaults); ``renamed``: flags of earlier versions -> their
    names now. A refused command line exits with status 2 and one line; a value the
    dataclasses refuse (ValueError) with their message, ``in_flags``'s rewording of it. ``prog``:
    the command's name in its usage line (default: how it was started)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    _refuse_renamed(argv, renamed or {})
    registry = _registry(defaults or {}, hidden or {})
    shown = io.StringIO()
    try:
        with contextlib.redirect_stderr(shown):
            return tyro.cli(
                cls, args=argv, prog=prog or _command(), description=description, registry=registry
            )
    except ValueError as err:  # a __post_init__'s: the value the dataclass refuses
        usage_error(in_flags(str(err)))
    except SystemExit as exit_:
        if exit_.code != 2:  # --help and the like
            sys.stderr.write(shown.getvalue())
            raise
        usage_error(in_flags(one_line(shown.getvalue())))


def last_value(argv: Sequence[str], flag: str) -> str | None:
    """The value given to ``flag`` last in ``argv`` (``--flag VALUE`` or ``--flag=VALUE``)."""
    found = None
    for word, after in itertools.pairwise([*argv, None]):
        if word == flag:
            found = after
        elif word.startswith(flag + "="):
            found = word.split("=", 1)[1]
    return found


def usage_error(message: str) -> typing.NoReturn:
    """Exit as a refused command line does: status 2, one line on stderr."""
    print(f"error: {message} (see --help)", file=sys.stderr)
    raise SystemExit(2)


def _refuse_renamed(argv: list[str], renamed: dict[str, str]) -> None:
    given = [word.split("=")[0] for word in argv]
    moved = [f"{flag} is {renamed[flag]} now" for flag in given if flag in renamed]
    if moved:
        usage_error("; ".join(moved))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours, where stdout is a terminal
_EDGE = re.compile(r"^[╭╰]")  # a drawn box's top (with its title) and bottom lines
_SIDES = re.compile(r"^│ ?| ?│$")
_RULE = re.compile(r"^(─{3,}|-{3,})$")
_WHERE = re.compile(r"^Error parsing [\w.]+: ")  # "Error parsing config.execution: ..."


def one_line(shown: str) -> str:
    """tyro's error box (drawn, or in ASCII where stdout is not UTF-8: its title, a rule, the
    lines) as one line: its message, then the flags it suggests, if any ("did you mean
    --num-epochs?"); its title, its help for the flag and its footer left out."""
    text = _ANSI.sub("", shown)
    lines = [_SIDES.sub("", line).strip() for line in text.splitlines() if not _EDGE.match(line)]
    parts: list[list[str]] = [[]]
    for line in lines:
        if _RULE.match(line):
            parts.append([])
        elif line:
            parts[-1].append(line)
    if "╭" not in text:  # the ASCII box: its title stands alone above a rule
        parts = parts[1:]
    message = _WHERE.sub("", " ".join(parts[0]))
    if message.startswith("Missing from"):  # the flags and their help: the flags alone
        message = "missing " + ", ".join(line for line in parts[0] if line.startswith("-"))
    for part in parts[1:]:
        if part and part[0].startswith("Perhaps you meant"):
            near = [line.split()[0] for line in part[1:] if line.startswith("-")]
            message += f"; did you mean {' or '.join(dict.fromkeys(near))}?"
    return message


def _registry(
    defaults: dict[type, Any], hidden: dict[type, tuple[str, ...]]
) -> ConstructorRegistry:
    """A dataclass's flags as tyro makes them, but with its help on one line per paragraph
    (tyro keeps the line breaks of an indented docstring), ``defaults``' values and
    ``hidden``'s fields left out."""
    registry = ConstructorRegistry()

    @registry.struct_rule
    def settings(info: StructTypeInfo) -> StructConstructorSpec | None:
        cls = info.type
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            return None
        default = info.default
        if cls in defaults and (_missing(default) or default == cls()):
            default = defaults[cls]
        docs, types = field_help(cls), typing.get_type_hints(cls, include_extras=True)
        fields = [
            StructFieldSpec(
                name=field.name,
                type=types[field.name],
                default=_field_default(field, default),
                helptext=docs.get(field.name),
            )
            for field in dataclasses.fields(cls)
            if field.init and field.name not in hidden.get(cls, ())
        ]
        return StructConstructorSpec(instantiate=cls, fields=tuple(fields))

    return registry


def _missing(default: Any) -> bool:
    return default is MISSING_NONPROP or default is MISSING


def _field_default(field: dataclasses.Field, default: Any) -> Any:
    if _missing(default):
        if field.default is not dataclasses.MISSING:
            return field.default
        if field.default_factory is not dataclasses.MISSING:
            return field.default_factory()
        return MISSING_NONPROP
    return getattr(default, field.name)


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """The docstring under each field of ``cls`` (and of the classes it derives from), each
    paragraph on one line."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[:-1]):
        for param in docstring_parser.parse_from_object(base).params:
            if param.description:
                paragraphs = re.split(r"\n\s*\n", param.description)
                docs[param.arg_name] = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    return docs


def summary(doc: str) -> str:
    """A module docstring's first paragraph on one line: a command's --help description."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _command() -> str | None:
    """How the running command was started, ``python -m experiments.train`` (None: a script,
    which tyro names itself)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return f"python -m {spec.name}" if spec is not None else None
