"""Likelihood terms: pure PyTensor functions, each testable alone.

A likelihood term knows nothing about papers or cohorts; the model builders combine them.
"""
