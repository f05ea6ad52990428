"""The typed contract every method's trial returns: one `MethodRow` per test device.

A method (``fit_and_score``) reports what it measured; the runner adds the trial's identity
(registered method name, space, samples, seed, repeat, key, provenance) beside it and never
changes what the method reported: the implementation's own name stays in ``implementation``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import MultipredictError
from ..messages import validation_message


class MethodRow(BaseModel):
    """One test device's result: ``device`` and ``spearman`` required, the common metrics typed when
    given. Extra, method-specific fields (settings, diagnostics) are kept."""

    model_config = ConfigDict(extra="allow")

    device: str
    spearman: float = Field(description="Spearman rho of the predictions against the true values")
    kendall: float | None = Field(None, description="Kendall tau")
    n_eval: int | None = Field(None, ge=0, description="archs scored")
    n_fewshot: int | None = Field(None, ge=0, description="few-shot archs of the target device")
    seconds: float | None = Field(None, ge=0, description="wall time of this device, with its share of a pretraining")
    pool: str | int | None = Field(None, description="the arch pool it drew from (a label or its size)")
    method: str | None = Field(None, description="the implementation's own name (e.g. 'transfer')")


def check_rows(rows, method: str) -> list[dict]:
    """Validate a method's rows against `MethodRow`; a broken contract is a clear error."""
    checked = []
    for row in rows:
        try:
            # what the method reported, type-checked; fields it left out stay out (the runner marks them NaN)
            checked.append(MethodRow.model_validate(row).model_dump(exclude_unset=True))
        except ValidationError as error:
            raise MultipredictError(f"method {method!r} returned a row that breaks the trial contract: "
                                    f"{validation_message(error)}") from None
    return checked
