"""The mechanism as a sampler: concrete neighbouring datasets and releases drawn from them.

An audit needs three things: two neighbouring datasets ``D`` (with the audited record) and
``D'`` (without it, or with it replaced), and a *release function*: any callable

    release_fn(dataset, trials, rng) -> array of shape (trials, T, d)

that runs the mechanism ``trials`` independent times on ``dataset`` (an ``(N, d)`` array) and
returns the ``T`` releases of each run. :class:`InstaHideReleases` is the numpy reference
implementation of DP-InstaHide (docs/theory.md Sec. 1 and 2); an implementation under audit (the
torch augmentation of ``training/``, or a user's own code) plugs in through the same signature.

The reference implementation draws exactly what the sampler draws, vectorised over trials:

- ``subsets``: an independent uniform k-subset of the N records for every release (Floyd's
  algorithm, column by column; or, for datasets with few distinct records, the multivariate
  hypergeometric counts of each distinct record, which is the same law of the mixed mean);
- ``permutation``: per epoch of N outputs, k independent uniform permutations; output j mixes
  the records at position j of each (the last, partial epoch keeps its first T mod N outputs);
- ``poisson``: every record joins every release independently with probability ``rate``; the
  sum is divided by k.
Noise is i.i.d. Laplace(0, b) per coordinate, drawn as an exponential with a random sign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..validate import check_count
from ..events import InstaHide, Labels, Relation, Sampler
from ..samplers import ceil_epochs, sampler_type
from ..validate import check_enum, check_positive_finite, check_positive_int
from ..errors import InputError

__all__ = [
    "ReleaseFn",
    "as_dataset",
    "NeighbourPair",
    "worst_case_pair",
    "candidate_pairs",
    "InstaHideReleases",
    "laplace",
]

ReleaseFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

#: a dataset with at most this many distinct records uses the grouped (count-based) samplers
GROUPED_MAX = 8


def laplace(rng: np.random.Generator, shape, b: float) -> np.ndarray:
    """Laplace(0, b) draws: ``b * E * sign`` with E standard exponential (ziggurat) and an
    independent fair sign; the same law as ``rng.laplace`` at about half the cost."""
    e = rng.standard_exponential(shape)
    np.copysign(e, rng.random(shape) - 0.5, out=e)
    e *= b
    return e


def as_dataset(x, name: str = "dataset") -> np.ndarray:
    """A finite float array of shape (N, d); a 1-D input is N records of dimension 1."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric array of shape (N, d); got {type(x).__name__}")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{name} must have shape (N, d) with N, d >= 1; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} must be finite; got a nan or inf entry")
    return a


@dataclass(frozen=True)
class NeighbourPair:
    """Two neighbouring datasets: ``d`` holds the audited record, ``d_prime`` does not.

    Substitution: same size, exactly one row differs. Add/remove: ``d_prime`` is ``d`` with one
    row removed. Checked at construction; ``relation`` names which.

    ``label_columns``: the last ``label_columns`` coordinates of every record are its one-hot
    label, released beside the image as the un-noised soft label (``labels="soft"``): mixed with
    the image, never noised, and outside the image's L1 change.
    """

    d: np.ndarray
    d_prime: np.ndarray
    relation: Relation
    description: str = ""
    label_columns: int = 0
    dirichlet_alpha: float | None = None

    def __post_init__(self):
        d = as_dataset(self.d, "d")
        dp = as_dataset(self.d_prime, "d_prime")
        rel = check_enum(Relation, "relation", self.relation)
        if d.shape[1] != dp.shape[1]:
            raise InputError(f"d and d_prime must have the same record dimension; got "
                             f"{d.shape[1]} and {dp.shape[1]}")
        if rel is Relation.SUBSTITUTION:
            if d.shape != dp.shape:
                raise InputError(f"substitution neighbours have the same size; got {d.shape[0]} "
                                 f"and {dp.shape[0]} records")
            differ = int(np.any(d != dp, axis=1).sum())
            if differ > 1:
                raise InputError(f"substitution neighbours differ in at most one record; got "
                                 f"{differ} differing rows")
        else:
            if d.shape[0] != dp.shape[0] + 1:
                raise InputError(f"add/remove neighbours: d has one more record than d_prime; "
                                 f"got {d.shape[0]} and {dp.shape[0]}")
            if not _is_sub_multiset(dp, d):
                raise InputError("add/remove neighbours: d_prime must be d with one record "
                                 "removed")
        lc = self.label_columns
        if isinstance(lc, bool) or not isinstance(lc, (int, np.integer)) or not (
                0 <= lc < d.shape[1]):
            raise InputError(f"label_columns must be an integer in [0, {d.shape[1] - 1}] (the "
                             f"records have {d.shape[1]} coordinates); got {lc!r}")
        for name, a in (("d", d), ("d_prime", dp)):
            lab = a[:, a.shape[1] - int(lc):]
            if lc and not (np.all((lab == 0) | (lab == 1)) and np.all(lab.sum(1) == 1)):
                raise InputError(f"the last {lc} columns of {name} must be one-hot labels")
        object.__setattr__(self, "label_columns", int(lc))
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "d_prime", dp)
        object.__setattr__(self, "relation", rel)

    @property
    def image_columns(self) -> int:
        return self.d.shape[1] - self.label_columns

    def class_sizes(self) -> tuple[int, ...] | None:
        """Records per class in ``d`` (classes with none left out), or None without labels."""
        if not self.label_columns:
            return None
        counts = self.d[:, self.image_columns:].sum(0).astype(int)
        return tuple(int(c) for c in counts if c > 0)

    @property
    def l1_distance(self) -> float:
        """L1 size of the change of the image: ``||x - x'||_1`` (substitution) or ``||x||_1``
        (add/remove); label columns are not part of it."""
        w = self.image_columns
        if self.relation is Relation.SUBSTITUTION:
            return float(np.abs(self.d[:, :w] - self.d_prime[:, :w]).sum())
        return float(np.abs(self.d[:, :w].sum(0) - self.d_prime[:, :w].sum(0)).sum())

    def to_dict(self) -> dict:
        return {"relation": self.relation.value, "n_d": int(self.d.shape[0]),
                "n_d_prime": int(self.d_prime.shape[0]), "dim": int(self.d.shape[1]),
                "label_columns": self.label_columns, "class_sizes": self.class_sizes(),
                "l1_distance": self.l1_distance, "description": self.description}


def _is_sub_multiset(small: np.ndarray, big: np.ndarray) -> bool:
    us, cs = np.unique(small, axis=0, return_counts=True)
    ub, cb = np.unique(big, axis=0, return_counts=True)
    lookup = {tuple(r): c for r, c in zip(ub, cb)}
    return all(lookup.get(tuple(r), 0) >= c for r, c in zip(us, cs))


def worst_case_pair(mech: InstaHide) -> NeighbourPair:
    """The worst concrete neighbours known for ``mech`` (``docs/theory.md`` Sec. 3).

    One-dimensional records in ``[0, Delta]``: ``D`` holds one record at ``Delta`` and N - 1
    records at 0; ``D'`` replaces it by 0 (substitution) or drops it (add/remove). One release on
    ``D`` is then ``(1-q) Lap(0, b) + q Lap(Delta/k, b)`` and on ``D'`` is ``Lap(0, b)``. It
    attains eps1 for one release (Balle, Barthe, Gaboardi 2018, Thm 10); under add/remove its
    composition is what the accountant composes. Under substitution the accountant composes the
    symmetrised pair, which no dataset attains; this pair is the worst arrangement of the other
    records found at the audit's default setting (checked in the tests against the other records
    in the middle, at the record's own value, and split between the ends), so it is still the
    pair an audit should try first. With the Poisson sampler the record sits at the largest
    record norm (what adding it moves the sum by).

    With soft labels the records carry one-hot labels (``label_columns``) in the mechanism's
    class sizes (without them: the record alone in its class, the worst the accountant assumes),
    and the audited record is in the smallest class: the soft label then shows how many of its
    class the release holds, which is what the accountant's inclusion law conditions on.
    """
    n = mech.n
    if mech.labels is Labels.SOFT:
        return _labelled_pair(mech, 0.0, "worst case")
    d = np.zeros((n, 1))
    where = mech.shift
    d[0, 0] = where
    if mech.relation is Relation.SUBSTITUTION:
        dp = np.zeros((n, 1))
    else:
        dp = np.zeros((n - 1, 1)) if n > 1 else None
        if dp is None:
            raise InputError("add/remove worst case needs n >= 2 (d_prime would be empty)")
    return NeighbourPair(d, dp, mech.relation,
                         description=f"worst case: one record at {where:g}, the other "
                                     f"{n - 1} at 0, 1-D")


def _one_hot_labels(mech: InstaHide) -> np.ndarray:
    """One-hot labels for ``mech.n`` records in the mechanism's class sizes (the record alone in
    its class when none are given), smallest class first: record 0 is in the smallest class."""
    sizes = sorted(mech.class_sizes) if mech.class_sizes else [1] + ([mech.n - 1] if mech.n > 1
                                                                     else [])
    classes = np.repeat(np.arange(len(sizes)), sizes)
    return np.eye(len(sizes))[classes]


def _labelled_pair(mech: InstaHide, others: float, what: str) -> NeighbourPair:
    """Substitution pair with soft labels: record 0 (smallest class) at ``shift`` in D and at 0
    in D', every other record's image at ``others``."""
    lab = _one_hot_labels(mech)
    img = np.full((mech.n, 1), float(others))
    img_p = img.copy()
    img[0, 0], img_p[0, 0] = mech.shift, 0.0
    sizes = tuple(int(c) for c in lab.sum(0))
    return NeighbourPair(np.hstack([img, lab]), np.hstack([img_p, lab]), mech.relation,
                         description=f"{what}: one record moving {mech.shift:g} -> 0 in the "
                                     f"smallest class (sizes {sizes}), the other "
                                     f"{mech.n - 1} at {others:g}, with soft labels",
                         label_columns=lab.shape[1])


def candidate_pairs(mech: InstaHide) -> list[NeighbourPair]:
    """Neighbouring pairs an audit searches over (``pair="search"``): the worst case, and the
    other records placed elsewhere in the domain: at the record's other value, in the middle,
    and split between the two ends. Under substitution the accountant's symmetrised pair covers
    every placement, and a placement in between is what the pre-fix pair missed (issue 11):
    ``[1] + [.5]*4`` against ``[0] + [.5]*4`` needs a larger epsilon than the rest-at-0 pair
    for T >= 2. With soft labels every candidate keeps the mechanism's class structure."""
    out = [worst_case_pair(mech)]
    if mech.relation is not Relation.SUBSTITUTION:
        return out  # add/remove: the accountant's pair is attained by the worst case itself
    s, n = mech.shift, mech.n
    for others, what in ((s, "others at the record's value"), (s / 2, "others in the middle")):
        if mech.labels is Labels.SOFT:
            out.append(_labelled_pair(mech, others, what))
            continue
        d = np.full((n, 1), others)
        dp = d.copy()
        d[0, 0], dp[0, 0] = s, 0.0
        out.append(NeighbourPair(d, dp, mech.relation, description=f"{what}: one record "
                                 f"moving {s:g} -> 0, the other {n - 1} at {others:g}, 1-D"))
    if n >= 3 and mech.labels is not Labels.SOFT:
        d = np.zeros((n, 1))
        d[1 + (n - 1) // 2:, 0] = s
        dp = d.copy()
        d[0, 0] = s
        out.append(NeighbourPair(d, dp, mech.relation, description=f"others split: one record "
                                 f"moving {s:g} -> 0, {(n - 1) // 2} others at 0 and "
                                 f"{n - 1 - (n - 1) // 2} at {s:g}, 1-D"))
    return out


def check_pair_against(pair: "NeighbourPair", mech: InstaHide) -> None:
    """Refuse, in one line, a pair the mechanism's bound does not describe: the dataset holding
    the record must have the mechanism's N records, and the change must fit the mechanism's
    domain (the shift its accountants assume): substitution, ``||x - x'||_1 <= diameter``;
    add/remove with fixed-size subsets (the coupling swaps the record for another one), every
    ``||x - y||_1 <= diameter``; Poisson add/remove, ``||x||_1 <= norm``. Auditing a pair outside
    the bound "finds" a violation of a correct mechanism; within it, never."""
    n_d = pair.d.shape[0]
    if n_d != mech.n:
        raise InputError(f"the pair's d holds {n_d} records but the mechanism says n={mech.n}; "
                         f"give n={n_d} (--n {n_d}) or a pair of {mech.n} records")
    if (mech.labels is Labels.SOFT) != bool(pair.label_columns):
        raise InputError(
            "the mechanism releases the soft label, so the pair must carry it (label_columns: "
            "the last columns of every record, one-hot)" if mech.labels is Labels.SOFT else
            f"the pair carries labels (label_columns={pair.label_columns}) but the mechanism "
            f"releases labels {mech.labels.value!r}; describe it with labels='soft'")
    if pair.label_columns:
        w = pair.image_columns
        if np.any(pair.d[:, w:] != pair.d_prime[:, w:]):
            raise InputError("with soft labels the accountant covers substitutions that keep "
                             "the record's label; the pair changes a label")
        if mech.class_sizes is not None and sorted(pair.class_sizes()) != sorted(
                mech.class_sizes):
            raise InputError(f"the pair's class sizes {pair.class_sizes()} differ from the "
                             f"mechanism's class_sizes {mech.class_sizes}")
    slack = 1e-9 * max(mech.shift, 1e-300)
    if pair.relation is Relation.SUBSTITUTION:
        change, what = pair.l1_distance, "the changed record moves by L1"
    else:
        x = _removed_record(pair)
        if mech.sampler_type.uses_norm:
            change, what = float(np.abs(x).sum()), "the added record has L1 norm"
        else:
            others = pair.d_prime
            change = float(np.abs(others - x).sum(axis=1).max()) if others.size else 0.0
            what = "the added record is at L1 distance up to"
    if change > mech.shift + slack:
        name = "norm" if mech.sampler_type.uses_norm else "diameter"
        raise InputError(f"{what} {change:g} but the mechanism's {name} is {mech.shift:g}: its "
                         f"bound does not cover this pair; give {name}={change:g} (--{name} "
                         f"{change:g}) or a pair within the domain")


def _removed_record(pair: "NeighbourPair") -> np.ndarray:
    """The record of ``d`` that ``d_prime`` lacks (add/remove)."""
    values, counts = np.unique(pair.d, axis=0, return_counts=True)
    if pair.d_prime.size:
        vp, cp = np.unique(pair.d_prime, axis=0, return_counts=True)
        lookup = {tuple(v): c for v, c in zip(vp, cp)}
    else:
        lookup = {}
    for v, c in zip(values, counts):
        if c > lookup.get(tuple(v), 0):
            return v
    raise InputError("add/remove neighbours: d_prime must be d with one record removed")


def distinct_records(dataset: np.ndarray):
    """Distinct records and their multiplicities, rarest first (so that the most common record,
    whose count is what is left over, comes last and costs no draw)."""
    values, counts = np.unique(dataset, axis=0, return_counts=True)
    order = np.argsort(counts, kind="stable")
    return values[order], counts[order]


@dataclass(frozen=True)
class InstaHideReleases:
    """The numpy reference implementation of DP-InstaHide, as a release function.

    ``InstaHideReleases(k, noise, releases, sampler, rate)(dataset, trials, rng)`` returns an
    array of shape ``(trials, releases, d)``. ``rate`` is the Poisson inclusion probability
    (``k / N`` of the accountant's N; required for ``poisson`` only, since under add/remove the
    two neighbours have different sizes but share the rate). ``weights`` (for building broken
    variants in tests and demonstrations only) replaces the uniform ``1/k`` mixing weights by the
    given k weights, assigned to the k chosen records in random order; ``replace=True`` draws the
    k records with replacement. Neither is DP-InstaHide as the accountant describes it.
    ``dirichlet_alpha`` draws fresh ``Dirichlet(alpha, ..., alpha)`` weights for every release
    (the mechanism option :attr:`dpaccount.events.InstaHide.dirichlet_alpha`; faithful when the
    mechanism says so).
    """

    k: int
    noise: float
    releases: int
    sampler: Sampler | str = "subsets"
    rate: float | None = None
    weights: tuple | None = None
    replace: bool = False
    #: the last ``label_columns`` coordinates of each record are its one-hot label: mixed like
    #: the image, released without noise (the soft label of ``labels="soft"``)
    label_columns: int = 0
    dirichlet_alpha: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "k", check_positive_int("k", self.k))
        object.__setattr__(self, "noise", check_positive_finite("noise", self.noise))
        object.__setattr__(self, "releases", check_positive_int("releases", self.releases))
        object.__setattr__(self, "sampler", check_enum(Sampler, "sampler", self.sampler))
        if sampler_type(self.sampler).independent_inclusion:
            r = self.rate
            if r is None or not (0.0 < float(r) <= 1.0):
                raise InputError(f"rate must be in (0, 1] for the poisson sampler; got {r!r}")
            object.__setattr__(self, "rate", float(r))
        lc = self.label_columns
        if isinstance(lc, bool) or not isinstance(lc, (int, np.integer)) or lc < 0:
            raise InputError(f"label_columns must be a non-negative integer; got {lc!r}")
        if self.dirichlet_alpha is not None:
            object.__setattr__(self, "dirichlet_alpha",
                               check_positive_finite("dirichlet_alpha", self.dirichlet_alpha))
            if self.weights is not None:
                raise InputError("give weights or dirichlet_alpha, not both")
            if sampler_type(self.sampler).independent_inclusion:
                raise InputError("dirichlet_alpha applies to the subsets and permutation "
                                 "samplers")
        if self.weights is not None:
            w = tuple(float(x) for x in self.weights)
            if len(w) != self.k or not all(np.isfinite(w)):
                raise InputError(f"weights must be {self.k} finite numbers; got {self.weights!r}")
            object.__setattr__(self, "weights", w)

    @classmethod
    def from_mechanism(cls, mech: InstaHide, **broken) -> "InstaHideReleases":
        if mech.dirichlet_alpha is not None and "weights" not in broken:
            broken.setdefault("dirichlet_alpha", mech.dirichlet_alpha)
        return cls(mech.k, mech.noise, mech.releases, mech.sampler,
                   rate=mech.sampling_rate if mech.sampler_type.independent_inclusion else None,
                   **broken)

    @property
    def random_weights(self) -> bool:
        return self.dirichlet_alpha is not None and self.k > 1

    @property
    def faithful(self) -> bool:
        """True when this is the mechanism the accountant describes (no broken variant)."""
        return self.weights is None and not self.replace

    def describe(self) -> str:
        s = f"numpy reference, k={self.k}, b={self.noise:g}, T={self.releases}, {self.sampler.value}"
        if self.label_columns:
            s += f", soft label of {self.label_columns} classes released"
        if self.random_weights:
            s += f", weights Dirichlet({self.dirichlet_alpha:g})"
        if self.weights is not None:
            s += f", BROKEN weights {self.weights}"
        if self.replace:
            s += ", BROKEN with-replacement subsets"
        return s

    # ---- the sampler: a (M, T, d) array of noiseless mixed means ----
    def noiseless_means(self, data: np.ndarray, trials: int,
                        rng: np.random.Generator) -> np.ndarray:
        n, d = data.shape
        t = self.releases
        m = trials * t
        if sampler_type(self.sampler).independent_inclusion:
            values, counts = distinct_records(data)
            # counts of each distinct record in each release: independent binomials
            c = rng.binomial(counts[None, :], self.rate, size=(m, counts.size))
            return (c @ values / self.k).reshape(trials, t, d)
        if self.k > n and not self.replace:
            raise InputError(f"k must be at most the dataset size; got k={self.k}, N={n}")
        if sampler_type(self.sampler).epoch_structured:
            return self._permutation_means(data, trials, rng)
        if self.weights is None and not self.replace and not self.random_weights:
            values, counts = distinct_records(data)
            if values.shape[0] <= GROUPED_MAX:
                return _grouped_subset_means(rng, values, counts, self.k, m).reshape(trials, t, d)
        if self.weights is None and not self.random_weights:  # uniform: column by column
            acc = np.zeros((m, d))
            for c in self._subset_columns(n, m, rng):
                acc += data[c]
            acc /= self.k
            return acc.reshape(trials, t, d)
        idx = self._subset_indices(n, m, rng)
        return self._mix(data, idx, rng).reshape(trials, t, d)

    def _subset_columns(self, n: int, m: int, rng) -> list:
        """k index columns of length m; row r is a uniform k-subset of range(n) (or, with
        ``replace``, k independent uniform indices).

        Floyd's algorithm (Bentley & Floyd 1987), one column at a time for all rows: for
        j = n-k .. n-1 draw t uniform in [0, j]; if t is already chosen, take j instead."""
        k = self.k
        if self.replace:
            return [rng.integers(0, n, size=m) for _ in range(k)]
        cols = []
        for j in range(n - k, n):
            t = rng.integers(0, j + 1, size=m)
            if cols:
                dup = cols[0] == t
                for c in cols[1:]:
                    dup |= c == t
                np.copyto(t, j, where=dup)
            cols.append(t)
        return cols

    def _subset_indices(self, n: int, m: int, rng) -> np.ndarray:
        return np.stack(self._subset_columns(n, m, rng), axis=1)

    def _mix(self, data: np.ndarray, idx: np.ndarray, rng) -> np.ndarray:
        """Mixed means of the rows ``data[idx[r]]``: uniform 1/k, fresh Dirichlet weights per
        row, or the broken weights."""
        if self.random_weights:
            w = rng.dirichlet(np.full(self.k, self.dirichlet_alpha), size=idx.shape[0])
            return np.einsum("mk,mkd->md", w, data[idx])
        if self.weights is None:
            return data[idx].mean(axis=1)
        w = np.asarray(self.weights)
        order = rng.permuted(np.broadcast_to(np.arange(self.k), idx.shape), axis=1)
        return np.einsum("mk,mkd->md", w[order], data[idx])

    def _permutation_means(self, data: np.ndarray, trials: int, rng) -> np.ndarray:
        n, d = data.shape
        t, k = self.releases, self.k
        epochs = ceil_epochs(t, n)
        values, counts = distinct_records(data)
        if (self.weights is None and not self.random_weights and values.shape[0] == 2
                and counts.min() == 1):
            # one record u differs from the other n-1 (all v): only u's k slots per epoch matter
            u, v = values[0], values[1]  # rarest first: u is the one record, v the rest
            out = np.broadcast_to(v, (trials, t, d)).copy()
            rows = np.arange(trials)
            step = (u - v) / k
            for e in range(epochs):
                for _ in range(k):
                    pos = e * n + rng.integers(0, n, size=trials)
                    ok = pos < t
                    np.add.at(out, (rows[ok], pos[ok]), step)
            return out
        if values.shape[0] == 1:
            return np.broadcast_to(values[0], (trials, t, d)).copy()
        out = np.empty((trials, t, d))
        for e in range(epochs):
            n_obs = min(n, t - e * n)  # the last epoch may be cut short
            idx = np.stack([ordered_sample(rng, n, n_obs, trials) for _ in range(k)], axis=2)
            out[:, e * n:e * n + n_obs] = self._mix(
                data, idx.reshape(-1, k), rng).reshape(trials, n_obs, d)
        return out

    def __call__(self, dataset, trials: int, rng: np.random.Generator) -> np.ndarray:
        data = as_dataset(dataset)
        trials = check_count("trials", trials)
        z = self.noiseless_means(data, trials, rng)
        w = data.shape[1] - self.label_columns
        z[..., :w] += laplace(rng, z.shape[:-1] + (w,), self.noise)
        return z


def ordered_sample(rng, n: int, size: int, m: int) -> np.ndarray:
    """``m`` rows, each the first ``size`` entries of an independent uniform permutation of
    range(n) (an ordered sample without replacement). Short prefixes of long permutations are
    drawn by rejection (rows with a repeat are redrawn whole, which keeps every injective row
    equally likely); otherwise a full permutation is drawn and cut."""
    if size < n and size * size <= n:
        out = rng.integers(0, n, size=(m, size))
        bad = np.arange(m)
        while bad.size:
            s_ = np.sort(out[bad], axis=1)
            rep = (s_[:, 1:] == s_[:, :-1]).any(axis=1)
            bad = bad[rep]
            if bad.size:
                out[bad] = rng.integers(0, n, size=(bad.size, size))
        return out
    return rng.permuted(np.broadcast_to(np.arange(n), (m, n)), axis=1)[:, :size]


def _grouped_subset_means(rng, values: np.ndarray, counts: np.ndarray, k: int,
                          m: int) -> np.ndarray:
    """``m`` mixed means of uniform k-subsets of the multiset (``values`` with multiplicities
    ``counts``), shape (m, d). Group by group, the number taken from group j given what is left is
    hypergeometric (a Bernoulli when the group has one member): the multivariate hypergeometric
    law of the subset's composition, which fixes the mean."""
    g, d = values.shape
    out = np.zeros((m, d))
    left_k = np.full(m, float(k))
    left_n = int(counts.sum())
    for j in range(g):
        nj = int(counts[j])
        rest = left_n - nj
        if j == g - 1 or rest == 0:
            c = left_k
        elif nj == 1:
            c = (rng.random(m) * left_n < left_k).astype(float)
        else:
            c = rng.hypergeometric(nj, rest, left_k.astype(np.int64)).astype(float)
        if np.any(values[j] != 0):
            out += c[:, None] * (values[j] / k)
        if j < g - 1:
            left_k = left_k - c
        left_n = rest
        if rest == 0:
            break
    return out
