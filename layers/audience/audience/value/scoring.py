"""The value model's predictions in plain Python (``math`` only): what the stream computes for a
customer on every order, with no numpy, scipy or scikit-learn on its path.

The Gaussian hypergeometric function is summed as its series, which converges for the
``|z| < 1`` these formulas give (z = t / (alpha + T + t)); the tests hold these functions to the
numpy/scipy ones to 1e-9 on every CDNOW customer.
"""

from __future__ import annotations

MAX_TERMS = 100_000
TOLERANCE = 1e-15


def hyp2f1(a: float, b: float, c: float, z: float) -> float:
    """2F1(a, b; c; z) for 0 <= z < 1, by its power series."""
    if not 0 <= z < 1:
        raise ValueError(f"the series needs 0 <= z < 1, got {z}")
    term, total = 1.0, 1.0
    for n in range(MAX_TERMS):
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        total += term
        if abs(term) <= TOLERANCE * abs(total):
            return total
    raise ArithmeticError(f"2F1({a}, {b}; {c}; {z}) did not converge in {MAX_TERMS} terms")


def p_alive(r: float, alpha: float, a: float, b: float, x: float, t_x: float, big_t: float) -> float:
    """BG/NBD: the probability the customer has not dropped out, given (x, t_x, T)."""
    if x <= 0:
        return 1.0
    odds: float = a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
    return 1 / (1 + odds)


def expected_orders(r: float, alpha: float, a: float, b: float, t: float, x: float, t_x: float, big_t: float) -> float:
    """BG/NBD: E[Y(t) | x, t_x, T], the repeat orders expected in the next period of length t."""
    z = t / (alpha + big_t + t)
    head = (a + b + x - 1) / (a - 1)
    body = 1 - float((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    odds = a / (b + x - 1) * float((alpha + big_t) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
    return float(head * body / (1 + odds))


def expected_spend(p: float, q: float, v: float, x: float, zbar: float) -> float:
    """Gamma-Gamma: the expected average order value; the population mean for a customer
    without repeat orders (x = 0)."""
    if x <= 0 or zbar <= 0:
        return p * v / (q - 1)
    return (v + x * zbar) * p / (p * x + q - 1)
