"""PyTensor helpers shared by the families (imported lazily: the NumPy path never loads it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable
from pytensor.tensor.variable import TensorVariable

__all__ = ["TensorLike", "_as_float"]

TensorLike = Any  # TensorVariable | np.ndarray | float | int


def _as_float(x: TensorLike) -> TensorVariable:
    """Convert to a tensor; integer and boolean inputs are cast to float64.

    Non-symbolic inputs go through ``np.asarray`` first: ``pt.as_tensor_variable`` would turn a
    Python float such as ``1.5`` into a float32 constant.
    """
    if not isinstance(x, Variable):
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
    v = pt.as_tensor_variable(x)
    if not v.dtype.startswith("float"):
        v = pt.cast(v, "float64")
    return v
