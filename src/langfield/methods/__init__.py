"""Methods: each is a config tree (torch-free) plus a model built from shared field, sampler and renderer parts."""

from langfield.methods.registry import METHODS, method_names

__all__ = ["METHODS", "method_names"]
