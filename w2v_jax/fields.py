"""Dataclass fields checked against their declarations: each value against its annotation, a
``Literal``'s values being its choices (the commands' flags are read from the same
declarations by tyro: experiments.flags)."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Literal


def check_types(config: Any, prefix: str | None = None) -> None:
    """Raise ValueError naming the field (``prefix.name``, the class's name by default) and the
    value of any field of the dataclass ``config`` whose value its annotation does not allow; a
    Literal's values are its choices."""
    prefix = prefix or type(config).__name__
    for name, annotation in field_types(type(config)).items():
        value = getattr(config, name)
        allowed = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
        if value is None and type(None) in allowed:
            continue
        kind = next(a for a in allowed if a is not type(None))
        if typing.get_origin(kind) is Literal:
            if value not in typing.get_args(kind):
                raise ValueError(
                    f"{prefix}.{name}={value!r} must be one of {typing.get_args(kind)}"
                )
            continue
        expected = (int, float) if kind is float else typing.get_origin(kind) or kind
        # bool is a subclass of int; a flag given where a number belongs is a mistake.
        if not isinstance(value, expected) or (isinstance(value, bool) and kind is not bool):
            raise ValueError(
                f"{prefix}.{name}={value!r}: expected {annotation}, got {type(value).__name__}"
            )


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls)}
