"""Options declared once: one pydantic model per estimator or method.

A method's options (defaults, types, allowed values, one line of documentation each) live in one
`Options` subclass; the estimator reads its settings from an instance, the method registry asks it
which option names exist, the CLI validates ``--option KEY=VALUE`` against it before any trial runs,
and docstrings and ``multipredict ... --help`` text come from `Options.describe`::

    class MyOptions(Options):
        epochs: int = Field(50, ge=0, description="training epochs")

    MyOptions.parse({"epochs": "abc"}, "my method")   # MultipredictError naming the value and the fix
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import MultipredictError, UnknownNameError
from .messages import validation_message


class Options(BaseModel):
    """Base of every options model: frozen, unknown names refused, plain values only."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every option with its default value."""
        return {name: field.get_default(call_default_factory=True) for name, field in cls.model_fields.items()}

    @classmethod
    def parse(cls, options: Mapping[str, Any], method: str = "") -> Options:
        """Validate ``options`` (a partial mapping) into an instance; a bad name or value raises a
        one-line `MultipredictError` that names it, says what is valid and how to set it."""
        unknown = sorted(set(options) - set(cls.model_fields))
        if unknown:
            raise UnknownNameError(f"{method} option".strip(), unknown[0], sorted(cls.names()),
                                   "Set options as KEY=VALUE with one of these names")
        try:
            return cls(**dict(options))
        except ValidationError as error:
            prefix = f"{method} option " if method else ""
            raise MultipredictError(prefix + validation_message(error)) from None

    @classmethod
    def describe(cls) -> str:
        """One line per option: ``name (default): description``."""
        lines = []
        for name, field in cls.model_fields.items():
            default = field.get_default(call_default_factory=True)
            lines.append(f"{name} ({default!r}): {field.description or ''}".rstrip(": "))
        return "\n".join(lines)
