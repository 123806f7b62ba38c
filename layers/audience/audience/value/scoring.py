"""The value model's predictions in plain Python (``math`` only): what the stream computes for a
customer on every order, with no numpy, scipy or scikit-learn on its path.

The Gaussian hypergeometric function is summed as its series, which converges for the
``|z| < 1`` these formulas give (z = t / (alpha + T + t)); the tests hold these functions to the
numpy/scipy ones to 1e-9 on every CDNOW customer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_TERMS = 100_000
TOLERANCE = 1e-12  # relative: the tests hold the results to scipy's to 1e-9


def hyp2f1(a: float, b: float, c: float, z: float) -> float:
    """2F1(a, b; c; z) for 0 <= z < 1: Euler's transformation (1 - z)^(c-a-b) 2F1(c-a, c-b; c; z)
    summed as a power series. For the BTYD models' arguments (c - a and c - b stay small while
    c grows with the customer's orders) it needs several times fewer terms than the series of
    2F1(a, b; c; z) itself."""
    return float((1 - z) ** (c - a - b)) * _euler_series(a, b, c, z)


def _euler_series(a: float, b: float, c: float, z: float) -> float:
    """2F1(c - a, c - b; c; z) summed as a power series, for 0 <= z < 1."""
    if not 0 <= z < 1:
        raise ValueError(f"the series needs 0 <= z < 1, got {z}")
    p, q = c - a, c - b
    term, total = 1.0, 1.0
    for n in range(MAX_TERMS):
        term *= (p + n) * (q + n) / ((c + n) * (n + 1)) * z
        total += term
        if abs(term) <= TOLERANCE * abs(total):
            return total
    raise ArithmeticError(f"2F1({a}, {b}; {c}; {z}) did not converge in {MAX_TERMS} terms")


def _log_odds(r: float, alpha: float, a: float, b: float, x: float, t_x: float, big_t: float, modified: bool) -> float:
    """log(P(dropped out) / P(alive)): in logs, as the odds of a long-silent frequent buyer
    overflow a float (-inf for BG/NBD's one-time buyers, who cannot have dropped out)."""
    if x <= 0 and not modified:
        return -math.inf
    return math.log(a) - math.log(b + x - 1 + modified) + (r + x) * (math.log(alpha + big_t) - math.log(alpha + t_x))


def p_alive(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, big_t: float, modified: bool = False
) -> float:
    """BG/NBD (``modified``: MBG/NBD): the probability the customer has not dropped out, given
    (x, t_x, T): 1 / (1 + odds), from the log-odds without overflowing ``exp``."""
    log_odds = _log_odds(r, alpha, a, b, x, t_x, big_t, modified)
    if log_odds <= 0:
        return 1 / (1 + math.exp(log_odds))
    return math.exp(-log_odds) / (1 + math.exp(-log_odds))


def expected_orders(
    r: float, alpha: float, a: float, b: float, t: float, x: float, t_x: float, big_t: float, modified: bool = False
) -> float:
    """E[Y(t) | x, t_x, T], the repeat orders expected in the next period of length t."""
    return expected_orders_many(r, alpha, a, b, (t,), x, t_x, big_t, modified)[0]


def expected_orders_many(
    r: float, alpha: float, a: float, b: float, ts: Sequence[float], x: float, t_x: float, big_t: float,
    modified: bool = False,
) -> list[float]:  # fmt: skip
    """E[Y(t) | x, t_x, T] for each period length t in ``ts`` (one pass over the series)."""
    s = float(modified)
    head = (a + b + x - 1 + s) / (a - 1) * p_alive(r, alpha, a, b, x, t_x, big_t, modified)
    # (1 - z)^(r + x) 2F1(r + x, b + x + s; c; z) = (1 - z)^(a - 1) 2F1(c - r - x, a - 1; c; z), Euler:
    # no vanishing power times an overflowing one for a customer with many orders
    return [head * (1 - (1 - z) ** (a - 1) * _euler_series(r + x, b + x + s, a + b + x - 1 + s, z))
            for z in (t / (alpha + big_t + t) for t in ts)]  # fmt: skip


def p_no_order(
    r: float, alpha: float, a: float, b: float, t: float, x: float, t_x: float, big_t: float, modified: bool = False
) -> float:
    """P(no order in the next period of length t | x, t_x, T): dropped out, or alive and none came."""
    alive = p_alive(r, alpha, a, b, x, t_x, big_t, modified)
    return float(1 - alive + alive * ((alpha + big_t) / (alpha + big_t + t)) ** (r + x))


def expected_spend(p: float, q: float, v: float, x: float, zbar: float) -> float:
    """Gamma-Gamma: the expected average order value; the population mean for a customer
    without repeat orders (x = 0)."""
    if x <= 0 or zbar <= 0:
        return p * v / (q - 1)
    return (v + x * zbar) * p / (p * x + q - 1)
