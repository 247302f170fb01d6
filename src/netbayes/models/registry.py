"""The model registry: every model netbayes fits, stores, predicts from and validates.

The store (``netbayes fit``, :func:`netbayes.store.fit_default`), the CLI and the conversion of
old model folders iterate :data:`MODELS` instead of naming the models. An entry names its class
lazily (importing this module imports neither PyMC nor the model modules). Adding a model means
a model class implementing :class:`netbayes.models.base.ModelBase` and one entry here (see
ARCHITECTURE.md, "Add a model").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MODELS", "ModelEntry", "default_model", "model_entry"]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model type.

    Attributes
    ----------
    model_type : str
        The stored model type (the stem of its files in a models folder).
    module, cls : str
        Where the model class lives (imported on first use).
    kwargs : dict
        The constructor arguments of the default (shipped) model.
    description : str
        One line for listings.
    """

    model_type: str
    module: str
    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def model_class(self) -> type:
        """The model class (imports its module)."""
        return getattr(importlib.import_module(self.module), self.cls)

    def default(self, **overrides: Any) -> Any:
        """The default model of this type (``overrides`` change constructor arguments)."""
        return self.model_class()(**{**self.kwargs, **overrides})


MODELS: dict[str, ModelEntry] = {
    e.model_type: e
    for e in (
        ModelEntry(
            "survival-pfs",
            "netbayes.models.survival",
            "SurvivalModel",
            {"endpoint": "pfs"},
            "PFS after each line (hierarchical AFT survival model)",
        ),
        ModelEntry(
            "survival-os",
            "netbayes.models.survival",
            "SurvivalModel",
            {"endpoint": "os"},
            "OS after each line (hierarchical AFT survival model)",
        ),
        ModelEntry(
            "toxicity",
            "netbayes.models.toxicity",
            "ToxicityModel",
            {},
            "grade III/IV cytopenia per cell line (ordinal CTCAE model)",
        ),
    )
}
"""Registered model types, in :data:`netbayes.spec.MODEL_TYPES` order (a test checks it)."""


def model_entry(model_type: str) -> ModelEntry:
    """The registry entry of ``model_type`` (ValueError naming the allowed types)."""
    if model_type not in MODELS:
        raise ValueError(
            f"model_type={model_type!r} is not allowed; expected one of {', '.join(MODELS)}"
        )
    return MODELS[model_type]


def default_model(model_type: str, **overrides: Any) -> Any:
    """The default model of ``model_type`` (what ``netbayes fit`` fits)."""
    return model_entry(model_type).default(**overrides)
