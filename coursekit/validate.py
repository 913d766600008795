"""Argument checks shared by the public functions: each raises a clear error that names
the argument and what is allowed."""

import numbers

import torch

from .i18n import tr


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(tr("bad_choice", name=name, allowed=list(allowed), value=value))
    return value


def check_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(tr("bad_int", name=name, low=low, value=value))
    return int(value)


def check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 or value != value:
        raise ValueError(tr("bad_number", name=name, value=value))
    return float(value)


def check_nonnegative(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(tr("bad_number_ge0", name=name, value=value))
    return float(value)


def check_module(name, value):
    if not isinstance(value, torch.nn.Module):
        raise TypeError(tr("bad_type", name=name, expected=tr("a_module"), got=type(value).__name__))
    return value


def check_data(X, y, same_length=True):
    """X and y: non-empty tensors, with the same number of examples (unless same_length=False:
    sequences laid out (time, batch) have their examples along the second axis)."""
    for name, t in (("X", X), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(tr("bad_type", name=name, expected=tr("a_tensor"), got=type(t).__name__))
        if t.ndim == 0 or len(t) == 0:
            raise ValueError(tr("empty_data", name=name))
    if same_length and len(X) != len(y):
        raise ValueError(tr("shape_mismatch", nx=len(X), ny=len(y)))


def first_forward(model, loss_fn, X, y):
    """The loss of the model on a few examples, or a clear error when model and data do not fit
    together (wrong number of features, labels out of range, ...), instead of a crash deep in torch."""
    try:
        return loss_fn(model(X), y)
    except (RuntimeError, IndexError, ValueError, TypeError) as error:
        message = str(error).strip().splitlines()[0]
        raise ValueError(tr("model_data_mismatch", shape=tuple(X.shape), y_shape=tuple(y.shape), error=message)) from None
