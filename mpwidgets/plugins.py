"""Plugins: modules that register extra methods with ``multipredict.experiments.register`` when
imported. Notebooks take them as a ``plugins`` parameter and the dashboard from ``plugins=`` or
``$MPWIDGETS_PLUGINS`` (comma-separated), so a method of your own runs headless and in the UI alike.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from multipredict.errors import MultipredictError


def load_plugins(modules: Iterable[str]) -> list[str]:
    """Import each module (which registers its methods); returns the names imported."""
    loaded = []
    for name in modules:
        name = name.strip()
        if not name:
            continue
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise MultipredictError(f"plugin module {name!r} cannot be imported ({error}); pass the import path "
                                    "of a module on sys.path that registers methods, e.g. 'mypackage.methods'") \
                from error
        loaded.append(name)
    return loaded
