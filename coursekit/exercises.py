"""Self-checks for exercises, and `claim`: the lesson states what its output shows, and the
notebook stops (in class and in CI) if it ever stops being true."""

import torch

from .i18n import tr


def claim(condition, key, **values):
    """State what the output above shows. Prints '✓ <statement>' when `condition` holds and
    raises AssertionError when it does not, so a lesson can never silently stop showing its
    point. `key` names the statement in coursekit.i18n (so it prints in the notebook's
    language); `values` fill its blanks."""
    text = tr(key, **values)
    if not bool(condition):
        raise AssertionError(tr("claim_failed", text=text))
    print(tr("claim_ok", text=text))


def check_function(student, reference, make_input, trials=20, atol=1e-5, rtol=1e-4, seed=0):
    """Compare a student's function with the reference on `trials` random inputs.

    make_input(generator) -> tuple of arguments. Inputs are cloned, so a function that
    works in place cannot change what the other one sees. Prints a pass, or the first
    counterexample; returns True / False.
    """
    name = getattr(student, "__name__", "your function")
    g = torch.Generator().manual_seed(seed)
    for _ in range(trials):
        args = make_input(g)
        clone = lambda a: [t.clone() for t in a] if isinstance(a, list) else a.clone() if isinstance(a, torch.Tensor) else a
        try:
            got = student(*[clone(a) for a in args])
        except NotImplementedError:  # the stub as given: nothing written yet
            print(tr("check_not_written", name=name))
            return False
        except Exception as error:  # the student's bug, shown, not raised
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            print(tr("check_error", name=name, error=detail, case=_show(args)))
            return False
        expected = reference(*[clone(a) for a in args])
        if not _close(got, expected, atol, rtol):
            print(tr("check_fail", name=name, case=_show(args), got=_show(got), expected=_show(expected)))
            return False
    print(tr("check_pass", name=name, n=trials))
    return True


def _close(a, b, atol, rtol):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, atol, rtol) for x, y in zip(a, b))
    try:
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    return a.shape == b.shape and torch.allclose(a, b, atol=atol, rtol=rtol, equal_nan=True)


def _show(x):
    with torch.no_grad():
        if isinstance(x, (list, tuple)):
            return "(" + ", ".join(_show(v) for v in x) + ")"
        if isinstance(x, torch.Tensor):
            values = ", ".join(f"{v:.4g}" for v in x.flatten()[:4].tolist())
            return f"tensor{tuple(x.shape)} [{values}{', ...' if x.numel() > 4 else ''}]"
        return repr(x)
