"""How far above the true optimal-composition (KOV) epsilon dpaccount's value lies, at large T.

`dpaccount.numerics.closed_form.kov_epsilon` evaluates the Murtagh-Vadhan profile in floating
point with a pessimistic allowance for rounding, so it returns an upper bound whose excess grows
with T (docs/theory.md Sec. 3). This script measures the excess: the true delta(eps') =
E[(1 - e^{eps' - L})_+], L = eps1 (T - 2I), I ~ Binomial(T, 1/(1 + e^eps1)), is summed in 50-digit
mpmath over +-20 standard deviations around the mode (the pmf by its ratio recurrence), and the
true eps' at the target delta is found by Newton's method on that sum. Prints, per (eps1, T), the
true epsilon, dpaccount's, and the relative excess (dpaccount - true) / true, which must be >= 0.

Run:  python benchmarks/kov_precision.py      (about a minute; T = 1e9 dominates)
"""

import math
import time

import mpmath as mp

from dpaccount.numerics.closed_form import kov_epsilon

mp.mp.dps = 50


def true_delta(eps1, T, eps, width=20):
    """(delta(eps), d delta / d eps) of T eps1-DP steps, at 50 digits."""
    eps1, eps = mp.mpf(eps1), mp.mpf(eps)
    p_i = 1 / (1 + mp.e ** eps1)  # P(a step's loss is -eps1)
    mode = int(math.floor((T + 1) * float(p_i)))
    sd = math.sqrt(T * float(p_i) * (1 - float(p_i)))
    lo, hi = max(0, mode - int(width * sd) - 1), min(T, mode + int(width * sd) + 1)
    # the losses above eps: L = eps1 (T - 2 i) > eps  <=>  i < (T - eps / eps1) / 2
    top = min(hi, int(math.ceil((T - float(eps / eps1)) / 2)))
    log_pmf = (mp.loggamma(T + 1) - mp.loggamma(lo + 1) - mp.loggamma(T - lo + 1)
               + lo * mp.log(p_i) + (T - lo) * mp.log(1 - p_i))
    pmf = mp.e ** log_pmf
    ratio = p_i / (1 - p_i)
    delta, slope = mp.mpf(0), mp.mpf(0)
    for i in range(lo, top + 1):
        loss = eps1 * (T - 2 * i)
        if loss > eps:
            w = mp.e ** (eps - loss)
            delta += pmf * (1 - w)
            slope -= pmf * w
        pmf *= ratio * (T - i) / (i + 1)
    return delta, slope


def true_epsilon(eps1, T, delta, start):
    eps = mp.mpf(start)
    for _ in range(30):
        d, s = true_delta(eps1, T, eps)
        step = (d - delta) / s
        eps -= step
        if abs(step) < mp.mpf(10) ** -30 * abs(eps):
            break
    return eps


def main():
    delta = 1e-5
    print(f"delta = {delta:g}; relative excess of dpaccount's kov_epsilon over the true value")
    print(f"{'eps1':>8} {'T':>12} {'true epsilon':>22} {'dpaccount':>22} {'excess':>10} {'s':>6}")
    for eps1, T in ((0.01, 1000), (0.01, 10**6), (1e-4, 10**9)):
        t0 = time.perf_counter()
        ours = kov_epsilon(eps1, T, delta)
        truth = true_epsilon(eps1, T, delta, ours)
        excess = (mp.mpf(ours) - truth) / truth
        print(f"{eps1:>8g} {T:>12d} {mp.nstr(truth, 17):>22} {ours:>22.17g} "
              f"{mp.nstr(excess, 2):>10} {time.perf_counter() - t0:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
