"""Search spaces: arch ids <-> strings, Vec encodings, torch builders."""

from ..errors import UnknownNameError
from . import fbnet, nb201

# the one list of the spaces with latency data (every module that checks a space name reads it here)
LATENCY_SPACES = ("nb201", "fbnet")
_MODULES = {"nb201": nb201, "fbnet": fbnet}
ALL_SPACES = ("nb201", "fbnet", "nb101", "nb301", "tnb101_micro", "tnb101_macro")


def get(space: str):
    """The module of a space with latency data (``nb201`` or ``fbnet``)."""
    if space not in LATENCY_SPACES:
        raise UnknownNameError("space", space, list(LATENCY_SPACES))
    return _MODULES[space]
