"""Closed-form posterior formulas (NumPy only) used by the prediction API: no PyMC on this path."""
