"""A module imported on first attribute access, for the modules on the prediction path.

``netbayes predict`` needs neither pandas nor SciPy, whose imports cost more than the
prediction itself; the modules it shares with table-making code (vocabularies, validators,
the prediction API's data-frame outputs) bind ``pd`` to a :class:`LazyModule` instead::

    if TYPE_CHECKING:
        import pandas as pd
    else:
        pd = LazyModule("pandas")

so pandas is imported the first time a data frame is made or read, and never by a prediction
that makes none (``tests/test_ranges_cache.py`` checks the command's imports at run time).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

__all__ = ["LazyModule", "loaded"]


class LazyModule:
    """Stands for the module ``name`` and imports it on first attribute access.

    Parameters
    ----------
    name : str
        The module's import name.
    """

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def loaded(name: str) -> ModuleType | None:
    """The module ``name`` if something has imported it already, else None.

    An object can be an instance of a class of ``name`` only if ``name`` is imported, so a type
    check against it need not import it: ``(m := loaded("pandas")) is not None and
    isinstance(x, m.DataFrame)``.
    """
    return sys.modules.get(name)
