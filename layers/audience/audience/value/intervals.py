"""Prediction intervals for a customer's orders and value, in plain Python (``math`` only), so the
stream computes them in the same write as the predictions.

Orders: BG/NBD's (or MBG/NBD's) distribution of the number of purchases in the next ``t`` days
given the history (x, t_x, T) is the model's own in closed form (Fader, Hardie & Lee 2005,
P(X(t) = y)): dropped out (probability 1 - P(alive)) means none; alive, the purchase rate's
posterior is Gamma(r + x, alpha + T) and the dropout probability's Beta(a, b + x (+ 1 for
MBG/NBD)), and from there

    P(y) = B(a, b' + y) / B(a, b') NB(y) + [y > 0] B(a + 1, b' + y - 1) / B(a, b') (1 - NB(< y))

with NB the negative binomial of the rate's posterior over t. Parameter uncertainty: the
distribution is averaged over the bootstrap draws of (r, alpha, a, b) the fit stored.

Value: the spend of y orders is Gamma(p y, nu) with nu's Gamma-Gamma posterior Gamma(q + p x,
v + x zbar), so spend / (v + x zbar) is beta-prime(p y, q + p x), an F distribution up to scale;
its distribution function is Paulson's normal approximation of F (Wilson-Hilferty on each
chi-square: within ~0.005 for these degrees of freedom), mixed over the order counts.

An interval of orders holds as close to the nominal probability as whole orders allow (its
lower end at the (1 - level) / 2 quantile); one of value leaves (1 - level) / 2 out on each side,
or only above when no order (value 0) is that likely.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from audience.value import scoring

Params = tuple[float, float, float, float]  # r, alpha, a, b
LEVELS = (0.8, 0.95)
MASS = 1 - 1e-5  # the order counts are summed until they hold this much probability
LEFT_OUT = 1e-4  # at most this much probability of order counts is left out of the spend's mixture
MAX_ORDERS = 100_000
TOLERANCE = 1e-3  # on log(spend): the interval's ends to ~0.1 %
MAX_STEPS = 60


def order_counts(
    draws: Sequence[Params], t: float, x: float, t_x: float, big_t: float, modified: bool = False
) -> list[float]:
    """P(y orders in the next ``t`` days | x, t_x, T) for y = 0, 1, ... until they hold ``MASS``,
    averaged over the parameter ``draws``."""
    each = [_order_counts(*params, t, x, t_x, big_t, modified) for params in draws]
    longest = max(len(pmf) for pmf in each)
    share = 1 / len(each)
    return [sum(pmf[y] for pmf in each if y < len(pmf)) * share for y in range(longest)]


def _order_counts(
    r: float, alpha: float, a: float, b: float, t: float, x: float, t_x: float, big_t: float, modified: bool
) -> list[float]:
    alive = scoring.p_alive(r, alpha, a, b, x, t_x, big_t, modified)
    shape, scale, b1 = r + x, alpha + big_t, b + x + float(modified)
    z = t / (scale + t)
    # the rate's posterior makes the count of an alive customer negative binomial: NB(y), kept in
    # logs until it is no longer below a float's range (a frequent buyer's NB(0) is e^-1000)
    log_nb = shape * math.log(scale / (scale + t))
    nb = math.exp(log_nb)
    pmf = [1 - alive + alive * nb]
    total, below, ratio, y = pmf[0], 0.0, 1.0, 0  # NB(< y); B(a, b' + y) / B(a, b')
    while total < MASS:
        y += 1
        if y > MAX_ORDERS:
            raise ArithmeticError(f"the order counts did not reach {MASS} in {MAX_ORDERS} orders")
        below += nb
        if nb > 0:
            nb *= (shape + y - 1) / y * z
        else:
            log_nb += math.log((shape + y - 1) / y * z)
            nb = math.exp(log_nb)
        dropped = ratio * a / (a + b1 + y - 1)  # B(a + 1, b' + y - 1) / B(a, b')
        ratio *= (b1 + y - 1) / (a + b1 + y - 1)
        p = alive * (ratio * nb + dropped * max(1 - below, 0.0))
        pmf.append(p)
        total += p
    return pmf


def count_interval(pmf: Sequence[float], level: float) -> tuple[int, int]:
    """The orders from the (1 - level) / 2 quantile up to where the probability held is nearest
    ``level`` (the wider on a tie)."""
    tail, cumulative, low = (1 - level) / 2, 0.0, None
    below = 0.0
    for y, p in enumerate(pmf):
        if low is None and cumulative + p >= tail:
            low, below = y, cumulative
        cumulative += p
        if low is not None and cumulative - below >= level:
            shorter = cumulative - p - below
            return low, y - 1 if y > low and level - shorter < cumulative - below - level else y
    return low or 0, len(pmf) - 1


def value_intervals(
    pmf: Sequence[float], p: float, q: float, v: float, x: float, zbar: float
) -> list[tuple[float, float]]:
    """The spend of the orders whose counts ``pmf`` gives, Gamma-Gamma (p, q, v) given the
    customer's x repeat orders of mean spend zbar: the interval holding each of ``LEVELS``."""
    none = pmf[0]
    shape, scale = (q + p * x, v + x * zbar) if x > 0 and zbar > 0 else (q, v)
    # spend / scale of n orders is (p n / shape) F(2 p n, 2 shape): Paulson's approximation of F's
    # distribution, Phi(((1 - b) c w^(1/3) - (1 - a)) / sqrt(a + b c^2 w^(2/3))), its constants per n
    b = 1 / (9 * shape)
    terms, negligible = [], LEFT_OUT / len(pmf)
    for n, weight in enumerate(pmf):
        if n > 0 and weight > negligible:
            a, c = 1 / (9 * p * n), (shape / (p * n)) ** (1 / 3)
            terms.append((weight / 2, 1 - a, (1 - b) * c, 2 * a, 2 * b * c * c))
    mean = sum(n * weight for n, weight in enumerate(pmf)) * p / max(shape - 1, 0.5)  # of spend / scale

    def below(u: float) -> float:
        """P(spend / scale <= e^u)."""
        cube = math.exp(u / 3)
        return none + sum(half * math.erfc((k - m * cube) / math.sqrt(a2 + b2 * cube * cube))
                          for half, k, m, a2, b2 in terms)  # fmt: skip

    def quantile(target: float) -> float:
        return scale * math.exp(_solve(lambda u: below(u) - target, math.log(mean)))

    found = []
    for level in LEVELS:
        tail = (1 - level) / 2
        if none >= level:
            found.append((0.0, 0.0))
        elif none >= tail:
            found.append((0.0, quantile(level)))
        else:
            found.append((quantile(tail), quantile(1 - tail)))
    return found


def _solve(g: Callable[[float], float], start: float) -> float:
    """The root of increasing ``g`` near ``start``: a bracket one unit wide found by stepping
    out, then the Illinois method (regula falsi that halves a stale end's value) to ``TOLERANCE``."""
    low, high = start - 1, start
    g_low, g_high = g(low), g(high)
    while g_high < 0:
        low, g_low, high = high, g_high, high + 1
        g_high = g(high)
    while g_low > 0:
        high, g_high, low = low, g_low, low - 1
        g_low = g(low)
    side = 0
    for _ in range(MAX_STEPS):
        middle = (low * g_high - high * g_low) / (g_high - g_low) if g_high != g_low else (low + high) / 2
        g_middle = g(middle)
        if g_middle < 0:
            low, g_low = middle, g_middle
            g_high, side = (g_high / 2, side) if side == -1 else (g_high, -1)
        else:
            high, g_high = middle, g_middle
            g_low, side = (g_low / 2, side) if side == 1 else (g_low, 1)
        if high - low < TOLERANCE or abs(g_middle) < 1e-7:
            return middle
    return (low + high) / 2
