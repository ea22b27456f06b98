import dataclasses
import math

import pytest

from dpaccount import InstaHide, Relation, Sampler, image_diameter, parse_image_shape
from dpaccount.events import parse_value_range

BASE = dict(k=4, noise=0.1, n=50000, diameter=3072.0, releases=2_000_000)


def test_fields_are_normalised_and_frozen():
    m = InstaHide(labels="none", **{**BASE, "n": 50000.0}, sampler="subsets", relation="substitution")
    assert m.n == 50000 and isinstance(m.n, int)
    assert m.sampler is Sampler.SUBSETS and m.relation is Relation.SUBSTITUTION
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.k = 2  # immutable: a description of what was run does not change afterwards


def test_derived_quantities():
    m = InstaHide(labels="none", **BASE)
    assert m.sampling_rate == 4 / 50000
    assert m.sensitivity == 3072.0 / 4
    assert m.epochs == 40.0


def test_from_epochs_gives_epochs_times_n():
    m = InstaHide.from_epochs(labels="none", k=4, noise=0.1, n=50000, diameter=3072.0, epochs=40)
    assert m.releases == 2_000_000
    half = InstaHide.from_epochs(labels="none", k=4, noise=0.1, n=1000, diameter=64.0, epochs=0.5)
    assert half.releases == 500


def test_image_diameter():
    # 3x32x32 in [0,1]: 3072 coordinates, each differing by at most 1
    assert image_diameter((3, 32, 32)) == 3072.0
    assert image_diameter((1, 8, 8), (0.0, 16.0)) == 1024.0  # sklearn digits' raw range
    assert image_diameter((3, 32, 32), labels=True) == 3074.0  # + L1 distance of two one-hots
    assert parse_image_shape("3x32x32") == (3, 32, 32)
    assert parse_image_shape("8,8") == (8, 8)
    assert parse_value_range("0:255") == (0.0, 255.0)


BAD = [
    (dict(noise=-1.0), "noise"),
    (dict(noise=0.0), "noise"),
    (dict(noise=math.nan), "noise"),
    (dict(noise=math.inf), "noise"),
    (dict(noise="0.1"), "noise"),
    (dict(k=0), "k"),
    (dict(k=2.5), "k"),
    (dict(k=True), "k"),
    (dict(k=50001), "k must be at most n"),
    (dict(n=0), "n"),
    (dict(diameter=-3.0), "diameter"),
    (dict(diameter=math.nan), "diameter"),
    (dict(releases=0), "releases"),
    (dict(releases=10**13), "releases"),
    (dict(sampler="shuffle"), "sampler"),
    (dict(relation="bounded"), "relation"),
    (dict(sampler="poisson"), "poisson"),
    (dict(sampler="permutation", relation="add_remove"), "permutation"),
    (dict(noise=1e-320, diameter=1e10), "diameter/noise"),
]


@pytest.mark.parametrize("change,needle", BAD, ids=[str(c) for c, _ in BAD])
def test_bad_values_are_refused_naming_the_parameter(change, needle):
    with pytest.raises(ValueError) as exc:
        InstaHide(labels="none", **{**BASE, **change})
    msg = str(exc.value)
    assert needle in msg
    assert "\n" not in msg


@pytest.mark.parametrize("shape", ["3x32", "3xAx32", "", "0x32x32", "-3x32x32", "3x32x"])
def test_bad_shapes(shape):
    if shape == "3x32":  # a two-dimensional shape is legitimate
        assert parse_image_shape(shape) == (3, 32)
        return
    with pytest.raises(ValueError, match="image shape"):
        parse_image_shape(shape)


@pytest.mark.parametrize("bad", [((0, 1), (1, 0)), ((3, 32), (0.0, math.nan)), ((), (0, 1))])
def test_bad_image_domains(bad):
    with pytest.raises(ValueError):
        image_diameter(*bad)


@pytest.mark.parametrize("epochs", [0, -1, math.nan, math.inf, "40", 1 / 3])
def test_bad_epochs(epochs):
    with pytest.raises(ValueError, match="epochs"):
        InstaHide.from_epochs(labels="none", k=4, noise=0.1, n=1000, diameter=1.0, epochs=epochs)
