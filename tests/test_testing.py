"""dpaccount.testing: property tests a user runs on their own implementation. They pass on the
torch augmentation of training/ and fail, with the counterexample, on a broken one.

Every audit here has a fixed seed, so each test is deterministic. For the correct
implementation, each audit exceeds the accountant's bound with probability at most
1 - confidence = alpha / examples over the seeds, so the chance that some fixed seed stream makes
a correct implementation fail is at most alpha (0.05, a union bound over the examples). The
broken one (Laplace scale halved: eps0 doubles) is caught with a wide margin: the audit shows
about 2.7 against the accountant's 1.43, at 5000 trials per side (2.1 to 2.7 with other seeds)."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpaccount.audit import InstaHideReleases
from dpaccount.audit.simulate import check_pair_against
from dpaccount.errors import InputError
from dpaccount.events import InstaHide
from dpaccount.testing import assert_within_bound, mechanisms, neighbouring_pairs, \
    within_bound_test

from .conftest import ROOT

ONE = InstaHide(k=2, noise=1.0, n=4, diameter=4.0, releases=1, labels="none")  # eps1 = 1.434


def torch_augmentation(mechanism):
    """The factory a user writes: the torch augmentation of training/ for one mechanism."""
    from training.augment import torch_release_fn

    return torch_release_fn(mechanism.k, mechanism.noise, mechanism.releases,
                            mechanism.sampler.value)


def half_noise(mechanism):
    """A broken implementation: the reference with the Laplace scale halved."""
    rate = mechanism.sampling_rate if mechanism.sampler_type.independent_inclusion else None
    return InstaHideReleases(mechanism.k, mechanism.noise / 2, mechanism.releases,
                             mechanism.sampler, rate=rate)


def test_the_torch_augmentation_passes():
    pytest.importorskip("torch")
    # five generated mechanisms and pairs, each audited at confidence 1 - 0.05/5
    within_bound_test(torch_augmentation, alpha=0.05, max_examples=5, trials=10_000)()
    res = assert_within_bound(torch_augmentation, ONE, delta=1e-3, trials=20_000, seed=1)
    assert res.verdict == "consistent" and res.confidence == pytest.approx(0.95)
    assert "torch augmentation" in res.implementation


def test_a_broken_implementation_fails_with_its_counterexample():
    with pytest.raises(AssertionError) as err:
        assert_within_bound(half_noise, ONE, delta=1e-3, trials=5000, alpha=0.05, examples=10,
                            seed=0)
    msg = str(err.value)
    for part in ("exceeds the accountant's bound", "b=0.5", "confidence 0.995 = 1 - 0.05/10",
                 "method pld", "InstaHide(k=2, noise=1.0, n=4, diameter=4.0, releases=1",
                 "worst case: one record at 4", "d = [[4.]"):
        assert part in msg, (part, msg)
    # the same audit of the correct implementation passes: the failure is the bug's
    ok = assert_within_bound(InstaHideReleases.from_mechanism(ONE), ONE, delta=1e-3,
                             trials=5000, alpha=0.05, examples=10, seed=0)
    assert not ok.exceeds_upper_bound


def test_the_hypothesis_test_finds_the_broken_implementation():
    # mechanisms with eps0 = diameter / (k b) >= 1 and worst-shaped pairs: every example shows
    # the halved noise, so the first one fails and Hypothesis reports a shrunk counterexample
    strong = mechanisms(k=(1, 2), n=(2, 4), noise=(0.5, 1.0), diameter=(2.0, 4.0), releases=1)
    test = within_bound_test(half_noise, mechanism_strategy=strong, trials=5000,
                             pairs=lambda m: neighbouring_pairs(m, shapes=("worst",)))
    with pytest.raises(AssertionError, match="exceeds the accountant's bound"):
        test()
    # the correct implementation passes the same test
    within_bound_test(lambda m: InstaHideReleases.from_mechanism(m), mechanism_strategy=strong,
                      trials=5000, pairs=lambda m: neighbouring_pairs(m, shapes=("worst",)))()


@settings(max_examples=60)
@given(st.data())
def test_generated_pairs_are_neighbours_within_the_domain(data):
    mech = data.draw(mechanisms(samplers=("subsets", "permutation", "poisson"),
                                relations=("substitution", "add_remove"), k=(1, 4), n=(1, 7)))
    assert mech.k <= mech.n and mech.labels.value == "none" and mech.releases <= 3
    pair = data.draw(neighbouring_pairs(mech, dim=(1, 3)))
    check_pair_against(pair, mech)  # the bound covers it: no false alarm from the pair
    assert pair.relation is mech.relation and pair.d.shape[0] == mech.n
    assert np.abs(pair.d.mean(0) - pair.d_prime.mean(0)).sum() > 0


@pytest.mark.parametrize("call,match", [
    (lambda: mechanisms(k=(3, 1)), "k must be a range"),
    (lambda: mechanisms(noise=(0.0, 1.0)), "noise must be a positive"),
    (lambda: mechanisms(samplers=("poisson",)), "no sampler and relation"),
    (lambda: mechanisms(k=4, n=(1, 3)), "no sampler and relation"),
    (lambda: mechanisms(samplers=("magic",)), "sampler must be one of"),
    (lambda: neighbouring_pairs(ONE, shapes=("diagonal",)), "shapes must be"),
    (lambda: assert_within_bound(half_noise, ONE, delta=1e-3, trials=100, alpha=0),
     "alpha"),
    (lambda: assert_within_bound(half_noise, ONE, delta=1e-3, trials=100, examples=0),
     "examples"),
    (lambda: assert_within_bound(half_noise, InstaHide(k=2, noise=1.0, n=4, diameter=4.0,
                                                       releases=1), delta=1e-3, trials=100),
     "labels='none'"),
    (lambda: within_bound_test(InstaHideReleases.from_mechanism(ONE)), "factory"),
])
def test_bad_arguments_are_input_errors(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_importing_dpaccount_testing_needs_no_hypothesis():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'hypothesis':\n"
            "            raise ImportError('hypothesis is blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import dpaccount.testing\n"
            "assert 'hypothesis' not in sys.modules\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
