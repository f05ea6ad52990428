"""Errors the engine raises for bad input: each names the value, what was expected and the fix."""


class MultipredictError(Exception):
    """Base class of every error the project raises on purpose."""


def _plural(noun: str) -> str:
    """English plural of a (phrase ending in a) noun: proxy -> proxies, class -> classes, arm -> arms."""
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


class UnknownNameError(MultipredictError, KeyError):
    """A space, device, source or other name that does not exist."""

    def __init__(self, kind: str, value: object, valid: list[str] | tuple[str, ...], hint: str = ""):
        self.kind, self.value, self.valid = kind, value, list(valid)
        message = f"unknown {kind} {value!r}; valid {_plural(kind)}: {', '.join(map(str, self.valid))}"
        if hint:
            message += f". {hint}"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.args[0]


class DataError(MultipredictError):
    """A benchmark file is missing, corrupt or cannot be fetched."""
