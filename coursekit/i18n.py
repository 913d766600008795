"""Messages and plot labels in the notebook's language.

Every text coursekit shows a student goes through `tr(key, **values)`. The language is
chosen once, in a lesson's setup cell, with `coursekit.setup(lang=...)`.
"""

LANGUAGES = ("en", "ru", "zh", "pt", "fr")

MESSAGES = {
    "en": {
        # errors a student can trigger
        "bad_choice": "{name} must be one of {allowed}, got {value!r}",
        "bad_int": "{name} must be an integer >= {low}, got {value!r}",
        "bad_number": "{name} must be a number > 0, got {value!r}",
        "bad_number_ge0": "{name} must be a number >= 0, got {value!r}",
        "bad_type": "{name} must be {expected}, got {got}",
        "std_needed": "init='normal' needs std (a number > 0), for example std=0.01",
        "std_unused": "std is only used with init='normal', got init={init!r}",
        "shape_mismatch": "X and y must have the same number of examples, got {nx} and {ny}",
        "empty_data": "{name} is empty: give at least one example",
        "no_layers": "found no layers to watch in {model}: the model needs Linear, Conv, RNN/LSTM/GRU or activation layers",
        "no_params": "{model} has no parameters with gradients: call loss.backward() first, or check requires_grad",
        "no_grad_yet": "no gradients recorded yet: run a forward and a backward pass first",
        "clip_format": "clip must be None, ('norm', max_norm) or ('value', clip_value), got {value!r}",
        # data
        "data_missing": (
            "Could not find {dataset}. Get it in one of three ways:\n"
            "  1. put the torchvision files in {root} (or point COURSEKIT_DATA at a folder that has them);\n"
            "  2. install Debian's package: sudo apt-get install dataset-fashion-mnist;\n"
            "  3. go online once: torchvision downloads it into {root}.\n"
            "The download failed with: {error}"
        ),
        "data_corrupt": "{path} is damaged or truncated ({error}). Delete it and load again to get a fresh copy.",
        # training
        "nan_stop": "Stopped at step {step}: the loss is {loss}. The run diverged; the history up to this step is returned.",
        # verdicts
        "verdict_exploding": "exploding: the largest gradient norm is {big:.1e} (layer {layer}); first/last layer ratio {ratio:.1e}",
        "verdict_nonfinite": "exploding: the gradients contain NaN or Inf (layer {layer})",
        "verdict_vanishing": "vanishing: layer 1's gradient norm {first:.1e} is {ratio:.1e} x the last layer's ({last:.1e})",
        "verdict_all_small": "vanishing: every layer's gradient norm is below {limit:.0e} (largest {high:.1e})",
        "verdict_healthy": "healthy: gradient norms from {low:.1e} to {high:.1e}; first/last layer ratio {ratio:.1e}",
        # self-checks
        "check_pass": "✓ passed: {name} agrees with the reference on {n} random inputs",
        "check_fail": "✗ {name} differs from the reference on input {case}:\n  yours:    {got}\n  expected: {expected}",
        "check_error": "✗ {name} raised {error} on input {case}",
        "claim_ok": "✓ {text}",
        "claim_failed": "The lesson's claim did not hold: {text}",
        # the lessons' claims (ck.claim): statements their outputs show; no run-dependent numbers
        # -- lesson 01 claims --
        # -- lesson 02 claims --
        # -- lesson 03 claims --
        # -- lesson 04 claims --
        # -- lesson 05 claims --
        # plots
        "layer": "layer",
        "step": "step",
        "loss": "loss",
        "grad_norm": "gradient norm",
        "grad_norm_per_layer": "Weight-gradient norm per layer",
        "activations": "Activations",
        "gradients": "Gradients",
        "value": "value",
        "count": "count",
        "loss_curves": "Training loss",
        "saturation": "Saturated units (|h| > {threshold}): white = saturated",
        "unit": "unit",
        "example": "example",
        "update_ratio": "Update:data ratio  log10(std(update) / std(weight))",
        "healthy_level": "≈ -3 (healthy)",
        "time_step": "time step t",
        "grad_per_step": "‖∂L/∂x_t‖ per time step",
        "threshold": "threshold",
    },
}


_language = "en"


def set_language(lang):
    """Choose the language of coursekit's messages and plot labels."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
    global _language
    _language = lang


def get_language():
    return _language


def tr(key, **values):
    """The message `key` in the current language (English where it is not translated)."""
    table = MESSAGES.get(_language, {})
    text = table.get(key, MESSAGES["en"][key])
    return text.format(**values)
