"""Errors the engine raises for bad input: each names the value, what was expected and the fix."""


class MultipredictError(Exception):
    """Base class of every error the project raises on purpose."""


class UnknownNameError(MultipredictError, KeyError):
    """A space, device, source or other name that does not exist."""

    def __init__(self, kind: str, value: object, valid: list[str] | tuple[str, ...], hint: str = ""):
        self.kind, self.value, self.valid = kind, value, list(valid)
        message = f"unknown {kind} {value!r}; valid {kind}s: {', '.join(map(str, self.valid))}"
        if hint:
            message += f". {hint}"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.args[0]


class DataError(MultipredictError):
    """A benchmark file is missing, corrupt or cannot be fetched."""
