"""Lesson 06's floating-point tools: a gradient computed in float16 or bfloat16, and what it lost.

float16:  about 6e-8 (smallest subnormal) .. 65504, 10 bits of mantissa
bfloat16: float32's range (1e-38 .. 3e38), 7 bits of mantissa (8 with the hidden bit)
"""

import copy

import torch

from .validate import check_choice, check_data, check_module, check_positive

LOW_PRECISION = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def low_precision_gradient(model, X, y, loss_fn, dtype="float16", scale=1.0):
    """The gradient of loss_fn(model(X), y), back-propagated by a copy of `model` held in `dtype`
    (every weight, activation and gradient in that type, as on a GPU without master weights),
    of the loss multiplied by `scale` and divided by `scale` again in float32 afterwards.
    One flat float32 vector over all parameters; the model itself is not touched."""
    check_module("model", model)
    check_data(X, y)
    check_choice("dtype", dtype, LOW_PRECISION)
    scale = check_positive("scale", scale)
    low = copy.deepcopy(model).to(LOW_PRECISION[dtype])
    low.zero_grad(set_to_none=True)
    (loss_fn(low(X).float(), y) * scale).backward()
    return torch.cat([p.grad.float().flatten() / scale for p in low.parameters() if p.grad is not None])


def full_precision_gradient(model, X, y, loss_fn):
    """The same flat gradient, in the model's own (float32) precision, from a copy of `model`."""
    check_module("model", model)
    ref = copy.deepcopy(model)
    ref.zero_grad(set_to_none=True)
    loss_fn(ref(X), y).backward()
    return torch.cat([p.grad.flatten() for p in ref.parameters() if p.grad is not None])


def lost_fraction(low, reference):
    """Share of the entries that are non-zero in `reference` and exactly 0 in `low` (underflow)."""
    nonzero = reference != 0
    return ((low == 0) & nonzero).sum().item() / max(nonzero.sum().item(), 1)


def overflow_fraction(low):
    """Share of the entries that are inf or NaN (overflow)."""
    return (~torch.isfinite(low)).float().mean().item()
