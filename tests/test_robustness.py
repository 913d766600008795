"""Bad input gets a clear error: property-based tests over the public API (hypothesis).

Every wrong value must raise ValueError or TypeError whose message names the argument: never a
hang, a crash deep inside torch, or a silent wrong result."""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import coursekit as ck

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
not_a_positive_int = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.text(max_size=3),
                               st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
not_a_positive_number = st.one_of(st.floats(max_value=0), st.just(math.nan), st.text(max_size=3), st.none(),
                                  st.booleans(), st.integers(max_value=0))
unknown_name = st.text(max_size=12).filter(lambda s: s not in ck.models.ACTIVATIONS)


def raises_naming(name, fn, *args, **kwargs):
    with pytest.raises((ValueError, TypeError)) as err:
        fn(*args, **kwargs)
    assert name in str(err.value), f"{name!r} not named in: {err.value}"


@FAST
@given(arg=st.sampled_from(["depth", "width", "in_features", "out_features"]), value=not_a_positive_int)
def test_mlp_sizes(arg, value):
    raises_naming(arg, ck.mlp, **{arg: value})


@FAST
@given(value=unknown_name)
def test_mlp_activation_names(value):
    raises_naming("activation", ck.mlp, activation=value)


@FAST
@given(scheme=st.text(max_size=10).filter(lambda s: s not in ck.models.INITS), std=not_a_positive_number)
def test_init_names_and_std(scheme, std):
    raises_naming("scheme", ck.init_weights, torch.nn.Linear(2, 2), scheme)
    raises_naming("std", ck.init_weights, torch.nn.Linear(2, 2), "normal", std=std)


@FAST
@given(arg=st.sampled_from(["steps", "batch_size", "record_every"]), value=not_a_positive_int)
def test_train_counts(arg, value):
    X, y = torch.randn(8, 784), torch.zeros(8, dtype=torch.long)
    raises_naming(arg, ck.train, ck.mlp(depth=1, width=4), X, y, progress=False, **{arg: value})


@FAST
@given(lr=not_a_positive_number)
def test_train_learning_rate(lr):
    X, y = torch.randn(8, 784), torch.zeros(8, dtype=torch.long)
    raises_naming("lr", ck.train, ck.mlp(depth=1, width=4), X, y, lr=lr, progress=False)


@FAST
@given(clip=st.one_of(st.floats(), st.text(max_size=5), st.tuples(st.text(max_size=5), st.floats()),
                      st.tuples(st.sampled_from(["norm", "value"]), not_a_positive_number)))
def test_train_clip(clip):
    X, y = torch.randn(8, 784), torch.zeros(8, dtype=torch.long)
    raises_naming("clip", ck.train, ck.mlp(depth=1, width=4), X, y, clip=clip, progress=False)


@FAST
@given(n_features=st.integers(1, 900).filter(lambda n: n != 784), n=st.integers(1, 5))
def test_train_wrong_feature_count(n_features, n):
    X, y = torch.randn(n, n_features), torch.zeros(n, dtype=torch.long)
    raises_naming("X of shape", ck.train, ck.mlp(depth=1, width=4), X, y, progress=False)
    raises_naming("X of shape", ck.diagnose, ck.mlp(depth=1, width=4), X, y)


@FAST
@given(label=st.one_of(st.integers(10, 2**40), st.integers(-(2**40), -1)))
def test_train_labels_out_of_range(label):
    X, y = torch.randn(4, 784), torch.full((4,), label, dtype=torch.long)
    raises_naming("labels", ck.train, ck.mlp(depth=1, width=4), X, y, progress=False)


@FAST
@given(nx=st.integers(0, 6), ny=st.integers(0, 6))
def test_data_sizes(nx, ny):
    X, y = torch.randn(nx, 784), torch.zeros(ny, dtype=torch.long)
    if nx == ny and nx > 0:
        return
    raises_naming("X" if nx == 0 else "y" if ny == 0 else "same number", ck.train, ck.mlp(depth=1, width=4), X, y,
                  progress=False)


@FAST
@given(not_a_model=st.one_of(st.none(), st.integers(), st.text(max_size=4), st.just(torch.randn(2))))
def test_things_that_are_not_models(not_a_model):
    X, y = torch.randn(4, 784), torch.zeros(4, dtype=torch.long)
    for fn in (ck.Monitor, ck.weight_grad_norms):
        raises_naming("model", fn, not_a_model)
    raises_naming("model", ck.train, not_a_model, X, y)
    raises_naming("model", ck.diagnose, not_a_model, X, y)
    raises_naming("model", ck.evaluate, not_a_model, X, y)


@FAST
@given(dataset=st.text(max_size=12).filter(lambda s: s not in ck.data.DATASETS), n=not_a_positive_int)
def test_load_data_names_and_sizes(dataset, n):
    raises_naming("dataset", ck.load_data, dataset)
    if n is not None:
        raises_naming("n_train", ck.load_data, n_train=n)


@FAST
@given(cell=st.text(max_size=8).filter(lambda s: s not in ck.models.CELLS), hidden=not_a_positive_int)
def test_rnn_arguments(cell, hidden):
    raises_naming("cell", ck.rnn_classifier, cell)
    raises_naming("hidden", ck.rnn_classifier, hidden=hidden)


@FAST
@given(lang=st.text(max_size=4).filter(lambda s: s not in ck.LANGUAGES))
def test_language(lang):
    raises_naming("lang", ck.set_language, lang)


def test_model_without_parameters_or_gradients():
    raises_naming("no parameters with gradients", ck.weight_grad_norms, torch.nn.ReLU())
    frozen = ck.mlp(depth=1, width=4)
    for p in frozen.parameters():
        p.requires_grad_(False)
    raises_naming("no parameters with gradients", ck.weight_grad_norms, frozen)
    raises_naming("no layers", ck.Monitor, torch.nn.Sequential())
    X, y = torch.randn(4, 784), torch.zeros(4, dtype=torch.long)
    raises_naming("no parameters with gradients", ck.train, torch.nn.Flatten(), X, y)
    raises_naming("no parameters with gradients", ck.train, frozen, X, y)


@FAST
@given(values=st.dictionaries(st.text(min_size=1, max_size=5),
                              st.one_of(st.floats(min_value=0, allow_infinity=True), st.just(math.nan)),
                              min_size=1, max_size=6))
def test_verdict_is_total(values):
    """Any per-layer values give one of the five verdicts, NaN/Inf always 'exploding', never a ratio of inf."""
    v = ck.verdict(values)
    assert v.kind in ("vanishing", "mild vanishing", "healthy", "mild exploding", "exploding") and str(v)
    assert not (math.isinf(v.ratio) and all(x == 0 for x in values.values()))  # 0/0 is never inf
    if any(not math.isfinite(x) for x in values.values()):
        assert v.kind == "exploding"


@FAST
@given(arg=st.sampled_from(["depth", "width", "heads", "seq_len"]), value=not_a_positive_int)
def test_transformer_sizes(arg, value):
    raises_naming(arg, ck.transformer, **{arg: value})


@FAST
@given(value=st.text(max_size=10).filter(lambda s: s not in ck.tinytransformer.BRANCH_INITS))
def test_transformer_branch_init_names(value):
    raises_naming("branch_init", ck.transformer, branch_init=value)


@FAST
@given(value=st.one_of(st.integers(max_value=-1), st.floats(allow_nan=True), st.text(max_size=3), st.booleans()))
def test_train_warmup(value):
    X, y = ck.make_copy_task(8)
    raises_naming("warmup", ck.train, ck.transformer(depth=1), X, y, warmup=value, loss_fn=ck.token_cross_entropy,
                  progress=False)


@FAST
@given(scale=not_a_positive_number, dtype=st.text(max_size=8).filter(lambda s: s not in ("float16", "bfloat16")))
def test_low_precision_arguments(scale, dtype):
    X, y = ck.make_copy_task(4)
    model = ck.transformer(depth=1)
    raises_naming("scale", ck.low_precision_gradient, model, X, y, ck.token_cross_entropy, scale=scale)
    raises_naming("dtype", ck.low_precision_gradient, model, X, y, ck.token_cross_entropy, dtype=dtype)
