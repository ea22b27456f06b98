"""The step-wise accountant a training loop drives: it must say exactly what the equivalent event
says, survive a checkpoint round trip, and refuse bad input before any training."""

import json

import pytest

from dpaccount import InputError, InstaHide, StepAccountant, compose, tightest

PARAMS = dict(k=4, noise=1.0, n=1000, diameter=4.0, labels="soft", class_sizes=(400, 600))


def test_steps_add_up_to_the_event():
    acc = StepAccountant(**PARAMS)
    for _ in range(7):
        acc.step(releases=64)
    acc.step(releases=552)  # a partial last batch
    event = InstaHide(releases=1000, **PARAMS)
    assert acc.event == event and acc.releases == 1000
    assert acc.get_epsilon(1e-5) == tightest(event, 1e-5).epsilon
    assert acc.get_bound(1e-5).method == tightest(event, 1e-5).method


def test_a_change_starts_a_phase():
    acc = StepAccountant(InstaHide(releases=1, **PARAMS))
    acc.step(releases=500)
    acc.step(releases=250, noise=2.0)
    acc.step(releases=250)  # the change sticks
    expected = compose(InstaHide(releases=500, **PARAMS),
                       InstaHide(releases=500, **{**PARAMS, "noise": 2.0}))
    assert acc.event == expected
    assert acc.get_epsilon(1e-5) == tightest(expected, 1e-5).epsilon


def test_state_round_trips_through_json():
    acc = StepAccountant(**PARAMS)
    acc.step(releases=300).step(releases=100, k=2)
    state = json.loads(json.dumps(acc.state_dict()))
    back = StepAccountant.from_state_dict(state)
    assert back.event == acc.event and back.get_epsilon(1e-5) == acc.get_epsilon(1e-5)
    # and continues as the original would
    back.step(releases=10)
    acc.step(releases=10)
    assert back.event == acc.event
    other = StepAccountant(**PARAMS)
    other.load_state_dict(json.dumps(state))
    assert other.event.releases == 400


@pytest.mark.parametrize("call,match", [
    (lambda: StepAccountant(**{**PARAMS, "noise": -1.0}), "noise"),
    (lambda: StepAccountant(**PARAMS, releases=5), "releases"),
    (lambda: StepAccountant(**PARAMS).step(releases=0), "releases"),
    (lambda: StepAccountant(**PARAMS).step(releases=1, sigma=2), "sigma"),
    (lambda: StepAccountant(**PARAMS).get_epsilon(1e-5), "step"),
    (lambda: StepAccountant(**PARAMS).step().get_epsilon(2.0), "delta"),
    (lambda: StepAccountant.from_state_dict({"version": 99}), "version"),
    (lambda: StepAccountant.from_state_dict("{not json"), "JSON"),
    (lambda: StepAccountant.from_state_dict({"version": 1, "phases": []}), "malformed"),
])
def test_bad_input_is_refused_by_name(call, match):
    with pytest.raises(InputError, match=match):
        call()
