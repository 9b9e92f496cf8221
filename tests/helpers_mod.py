"""A module of helper functions, imported by tests as ``helpers_mod.f``."""

import numpy as onp


def square_sum(x):
    return onp.sum(x * x)


def affine(x, W, b=0.0):
    return W @ x + b


def two(x):
    return x * 2.0, onp.sin(x)
