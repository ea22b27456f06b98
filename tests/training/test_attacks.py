"""training.attacks: gradient matching (Witches' Brew) and feature collision (Poison Frogs) on
tiny settings: the budget and value range hold exactly, labels are kept, the poisons are
deterministic for a seed, the objectives go down, bad arguments are refused by name."""

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dpaccount.errors import InputError  # noqa: E402
from training.attacks import (alignment_loss, apply_poisons, choose_target,  # noqa: E402
                              feature_collision, feature_distance, gradient_matching,
                              penultimate, targeted_success, train_surrogate)
from training.data import synthetic  # noqa: E402
from training.models import build_model  # noqa: E402

# one xdist worker for every test of this module: they share a module-scoped fixture
pytestmark = pytest.mark.xdist_group("attacks")

ADV = 1
TINY_GM = dict(poisons=6, budget=0.1, model="mlp", surrogate_epochs=2, restarts=2, steps=15)
TINY_FC = dict(poisons=6, budget=0.1, model="mlp", surrogate_epochs=2, steps=30)


@pytest.fixture(scope="module")
def data():
    return synthetic(n=256, n_test=64, num_classes=4, seed=3)


@pytest.fixture(scope="module")
def target(data):
    return choose_target(data, ADV, seed=0)


@pytest.fixture(scope="module")
def surrogate(data):
    return train_surrogate(data, model="mlp", epochs=3, seed=5)


def _gm(data, target, seed=0, **kw):
    args = dict(TINY_GM, **kw)
    return gradient_matching(data, target_index=target, adversarial_class=ADV, seed=seed, **args)


def _fc(data, target, seed=0, **kw):
    args = dict(TINY_FC, **kw)
    return feature_collision(data, target_index=target, base_class=ADV, seed=seed, **args)


def _check_poisons(data, idx, xp, budget, p):
    assert idx.dtype == torch.int64 and idx.shape == (p,)
    assert xp.dtype == data.x_train.dtype and xp.shape == (p,) + data.shape
    assert len(set(idx.tolist())) == p  # distinct records
    assert bool((data.y_train[idx] == ADV).all())  # all of the attacker's class
    assert float((xp - data.x_train[idx]).abs().max()) <= budget  # in float64
    assert bool(((xp - data.x_train[idx]).abs() <= budget).all())  # in float32
    lo, hi = data.value_range
    assert float(xp.min()) >= lo and float(xp.max()) <= hi
    assert bool((xp != data.x_train[idx]).any())  # something moved
    poisoned = apply_poisons(data, idx, xp)
    assert torch.equal(poisoned.y_train, data.y_train)  # clean label: no label changes
    assert poisoned.x_train.shape == data.x_train.shape  # substitution: same N
    changed = (poisoned.x_train != data.x_train).flatten(1).any(1)
    assert set(torch.nonzero(changed).flatten().tolist()) <= set(idx.tolist())
    assert torch.equal(poisoned.x_test, data.x_test)


def test_gradient_matching_budget_range_labels(data, target):
    idx, xp = _gm(data, target)
    _check_poisons(data, idx, xp, 0.1, 6)


def test_gradient_matching_with_augmentation_keeps_the_budget(data, surrogate, target):
    idx, xp = _gm(data, target, budget=0.3, augment=True, surrogate=surrogate)
    _check_poisons(data, idx, xp, 0.3, 6)


def test_feature_collision_budget_range_labels(data, target):
    idx, xp = _fc(data, target)
    _check_poisons(data, idx, xp, 0.1, 6)


def test_same_seed_same_poisons_other_seed_others(data, target):
    before = torch.get_rng_state()
    a_idx, a = _gm(data, target, seed=4)
    b_idx, b = _gm(data, target, seed=4)
    c_idx, c = _gm(data, target, seed=5)
    assert torch.equal(a_idx, b_idx) and torch.equal(a, b)
    assert not (torch.equal(a_idx, c_idx) and torch.equal(a, c))
    f_idx, f = _fc(data, target, seed=4)
    g_idx, g = _fc(data, target, seed=4)
    h_idx, h = _fc(data, target, seed=5)
    assert torch.equal(f_idx, g_idx) and torch.equal(f, g)
    assert not (torch.equal(f_idx, h_idx) and torch.equal(f, h))
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is left alone


def test_alignment_loss_goes_down(data, surrogate, target):
    budget = 0.2
    idx, xp = _gm(data, target, budget=budget, surrogate=surrogate, steps=40)
    x0, y = data.x_train[idx], data.y_train[idx]
    g = torch.Generator().manual_seed(0)
    start = (x0 + (torch.rand(x0.shape, generator=g) * 2 - 1) * budget).clamp(0, 1)
    xt = data.x_test[target]
    at_start = alignment_loss(surrogate, xt, ADV, start, y)
    at_end = alignment_loss(surrogate, xt, ADV, xp, y)
    assert 0 <= at_end < at_start <= 2
    assert at_end < alignment_loss(surrogate, xt, ADV, x0, y)


def test_feature_distance_goes_down(data, surrogate, target):
    idx, xp = _fc(data, target, budget=0.2, surrogate=surrogate)
    xt = data.x_test[target]
    at_base = feature_distance(surrogate, data.x_train[idx], xt)
    at_end = feature_distance(surrogate, xp, xt)
    assert at_end.shape == (6,)
    assert float(at_end.mean()) < float(at_base.mean())
    assert bool((at_end <= at_base).all())  # each poison: steps that go up are not taken


def test_choose_target_and_targeted_success(data):
    for seed in range(5):
        t = choose_target(data, ADV, seed)
        assert 0 <= t < data.x_test.shape[0] and int(data.y_test[t]) != ADV
        assert choose_target(data, ADV, seed) == t
    assert len({choose_target(data, ADV, s) for s in range(10)}) > 1
    model = build_model("mlp", data.shape, data.num_classes)
    t = choose_target(data, ADV, 0)
    with torch.no_grad():
        pred = int(model(data.x_test[t:t + 1]).argmax(1))
    assert targeted_success(model, data, t, pred) == 1.0
    assert targeted_success(model, data, t, (pred + 1) % data.num_classes) == 0.0
    assert model.training  # the mode is restored


def test_penultimate_features_of_both_models(data):
    x = data.x_train[:5]
    cnn = build_model("cnn", data.shape, data.num_classes)
    mlp = build_model("mlp", data.shape, data.num_classes)
    assert torch.allclose(cnn.head(penultimate(cnn, x)), cnn(x))
    assert torch.allclose(mlp.net[-1](penultimate(mlp, x)), mlp(x))


def test_cnn_surrogate_runs(data, target):
    idx, xp = _gm(data, target, model="cnn", surrogate_epochs=1, restarts=1, steps=3)
    _check_poisons(data, idx, xp, 0.1, 6)
    idx, xp = _fc(data, target, model="cnn", surrogate_epochs=1, steps=3)
    _check_poisons(data, idx, xp, 0.1, 6)


def _bad_cases(data, target):
    other_class_target = target
    own_class_target = int(torch.nonzero(data.y_test == ADV)[0])
    class_size = int((data.y_train == ADV).sum())
    return [
        ({"poisons": class_size + 1}, "poisons", str(class_size + 1)),
        ({"poisons": 0}, "poisons", "0"),
        ({"budget": 0.0}, "budget", "0.0"),
        ({"budget": -0.1}, "budget", "-0.1"),
        ({"budget": math.nan}, "budget", "nan"),
        ({"budget": math.inf}, "budget", "inf"),
        ({"target_index": own_class_target}, "target_index", str(own_class_target)),
        ({"target_index": data.x_test.shape[0]}, "target_index", str(data.x_test.shape[0])),
        ({"class": data.num_classes, "target_index": other_class_target}, "class",
         str(data.num_classes)),
        ({"class": -1}, "class", "-1"),
        ({"seed": -1}, "seed", "-1"),
        ({"model": "resnet"}, "model", "'resnet'"),
    ]


@pytest.mark.parametrize("attack", ["gradient_matching", "feature_collision"])
def test_bad_arguments_are_refused_by_name(data, target, attack):
    class_arg = "adversarial_class" if attack == "gradient_matching" else "base_class"
    fn = gradient_matching if attack == "gradient_matching" else feature_collision
    for change, name, value in _bad_cases(data, target):
        kw = dict(TINY_GM if attack == "gradient_matching" else TINY_FC)
        kw.update(target_index=target, seed=0)
        kw[class_arg] = ADV
        change = dict(change)
        if "class" in change:
            kw[class_arg] = change.pop("class")
            name = class_arg
        kw.update(change)
        with pytest.raises(InputError) as err:
            fn(data, **kw)
        msg = str(err.value)
        assert "\n" not in msg and name in msg and value in msg, (change, msg)


def test_bad_arguments_of_the_helpers(data):
    with pytest.raises(InputError, match="adversarial_class"):
        choose_target(data, data.num_classes, 0)
    with pytest.raises(InputError, match="restarts must be a positive integer; got 0"):
        _gm(data, choose_target(data, ADV, 0), restarts=0)
    with pytest.raises(InputError, match="beta must be"):
        _fc(data, choose_target(data, ADV, 0), beta=-1.0)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="cuda"):
            _gm(data, choose_target(data, ADV, 0), device="cuda")


def test_projection_is_exact_in_float32_and_float64():
    from training.attacks import project_to_budget

    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(2000, generator=g)
    for budget in (0.1, 1 / 3, 0.7, 1e-3, 0.2500001):
        x = x0 + (torch.rand(2000, generator=g) * 4 - 2) * budget
        p = project_to_budget(x, x0, budget, 0.0, 1.0)
        assert bool(((p - x0).abs() <= budget).all())  # the bound as float32
        assert float((p - x0).abs().max()) <= budget  # and as float64
        assert float(p.min()) >= 0.0 and float(p.max()) <= 1.0
