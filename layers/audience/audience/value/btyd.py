"""Buy-till-you-die models fitted by maximum likelihood: BG/NBD (Fader, Hardie & Lee 2005) for
repeat purchasing and dropout, its modified form MBG/NBD (Batislam, Denizel & Filiztekin 2007:
a customer may also drop out at the first purchase, so one-time buyers need not be alive), and
Gamma-Gamma (Fader & Hardie 2013) for spend per order.

Fitted on grouped, weighted sufficient statistics: customers with the same ``(x, t_x, T)`` (or
``(x, zbar)``) count once with a weight, so a million customers cost a few thousand rows. The
log-likelihoods are vectorised numpy with analytic gradients (digamma), minimised by L-BFGS-B
over the logs of the parameters; ``penalizer`` adds an L2 penalty on the parameters (as
``lifetimes`` does); a fit that does not converge raises ``FitFailed`` naming the reason.

The likelihoods, their gradients and P(alive) stay inside their domain for any history the data
can hold (no order yet, one-time buyers, t_x = T, thousands of orders) and any parameter the
optimiser may try: the log-parameters are bounded (``LOG_BOUND``: e^-30 to e^30, far beyond any
fitted value, so the parameters neither overflow nor reach 0), the alive and dropped-out terms
are added in logs (``np.logaddexp``), a ratio raised to the power of the orders is a log, and the
odds of having dropped out become a probability through the logistic function (``expit``). No
``log(0)``, no overflowing ``exp``: numpy has nothing to warn about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

Vector = NDArray[np.float64]
LogLikelihood = Callable[[Vector], tuple[float, Vector]]
LOG_BOUND = 30.0  # each parameter stays within e^-30 .. e^30 while fitting (a fit that reaches it has no optimum)


class FitFailed(RuntimeError):
    """The optimiser stopped without converging (the message says why)."""


@dataclass(frozen=True)
class Grouped:
    """Unique rows of sufficient statistics and how many customers share each."""

    rows: NDArray[np.float64]  # one column per statistic
    weights: Vector

    @classmethod
    def of(cls, *columns: Vector, decimals: int = 4) -> Grouped:
        """Rows rounded to ``decimals``, sorted, and runs of equal rows counted (a lexicographic
        sort: several times faster than ``np.unique(axis=0)`` on a million rows)."""
        stacked = np.round(np.column_stack([np.asarray(c, dtype=float) for c in columns]), decimals)
        if len(stacked) == 0:
            return cls(stacked, np.zeros(0))
        ordered = stacked[np.lexsort(stacked.T[::-1])]
        starts = np.flatnonzero(np.concatenate(([True], np.any(ordered[1:] != ordered[:-1], axis=1))))
        return cls(ordered[starts], np.diff(np.append(starts, len(ordered))).astype(float))


@dataclass(frozen=True)
class BetaGeo:
    """BG/NBD: purchase rate ~ Gamma(r, alpha), dropout after each purchase ~ Beta(a, b);
    ``modified`` (MBG/NBD): dropout at the first purchase too."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    modified: bool = False

    @property
    def name(self) -> str:
        return "MBG/NBD" if self.modified else "BG/NBD"

    def _log_odds(self, x: Vector, t_x: Vector, big_t: Vector) -> Vector:
        """log(P(dropped out) / P(alive)) given the history (-inf for BG/NBD's one-time buyers):
        in logs, as the odds of a long-silent frequent buyer overflow a float."""
        s, may_drop = float(self.modified), (x > 0) | self.modified
        rest = np.where(may_drop, self.b + x - 1 + s, 1.0)
        silence = (self.r + x) * (np.log(self.alpha + big_t) - np.log(self.alpha + t_x))
        return np.where(may_drop, np.log(self.a) - np.log(rest) + silence, -np.inf)

    def p_alive(self, x: Vector, t_x: Vector, big_t: Vector) -> Vector:
        x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))
        return expit(-self._log_odds(x, t_x, big_t))  # type: ignore[no-any-return]

    def expected(self, t: Vector) -> Vector:
        """E[X(t)]: repeat purchases of a new customer in a period of length t."""
        t = np.asarray(t, dtype=float)
        r, alpha, a, b, s = self.r, self.alpha, self.a, self.b, float(self.modified)
        z = t / (alpha + t)
        head = b / (a - 1) if self.modified else (a + b - 1) / (a - 1)
        return head * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b + s, a + b - 1 + s, z))  # type: ignore[no-any-return]

    def conditional_expected(self, t: float | Vector, x: Vector, t_x: Vector, big_t: Vector) -> Vector:
        """E[Y(t) | x, t_x, T]: purchases in the next period of length t, given the history."""
        x, t_x, big_t, t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t, t))
        r, alpha, a, b, s = self.r, self.alpha, self.a, self.b, float(self.modified)
        z = t / (alpha + big_t + t)
        head = (a + b + x - 1 + s) / (a - 1)
        # (1 - z)^(r + x) 2F1(r + x, b + x + s; c; z) by Euler's transformation, (1 - z)^(a - 1)
        # 2F1(c - r - x, a - 1; c; z) with c = a + b + x - 1 + s: the same number, without a
        # vanishing power times a huge series for a customer with many orders
        body = 1 - (1 - z) ** (a - 1) * hyp2f1(a + b - 1 + s - r, a - 1, a + b + x - 1 + s, z)
        return head * body * expit(-self._log_odds(x, t_x, big_t))  # type: ignore[no-any-return]

    def p_no_order(self, t: float | Vector, x: Vector, t_x: Vector, big_t: Vector) -> Vector:
        """P(no purchase in the next period of length t | x, t_x, T): dropped out, or alive with
        a rate that yields none (the posterior of the rate is Gamma(r + x, alpha + T))."""
        x, t_x, big_t, t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t, t))
        alive = self.p_alive(x, t_x, big_t)
        return 1 - alive + alive * ((self.alpha + big_t) / (self.alpha + big_t + t)) ** (self.r + x)  # type: ignore[no-any-return]


def bgnbd_log_likelihood(
    params: Vector, data: Grouped, gradient: bool = False, modified: bool = False
) -> tuple[float, Vector]:
    """The weighted log-likelihood at ``params`` = (r, alpha, a, b), and its gradient in them
    (``modified``: MBG/NBD's, where the dropout term covers one-time buyers too). Finite for
    any positive parameters: the alive and dropped-out terms are added in logs, a one-time
    buyer's missing dropout term is log 0 = -inf only inside ``np.logaddexp``, which takes it."""
    r, alpha, a, b = params
    x, t_x, big_t = data.rows.T
    w, s = data.weights, float(modified)
    may_drop = (x > 0) | modified
    log_alpha_t, log_alpha_tx = np.log(alpha + big_t), np.log(alpha + t_x)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x + s) - betaln(a, b)  # log[B(a, b + x + s) / B(a, b)]
    a3 = -(r + x) * log_alpha_t
    xm1 = np.where(may_drop, b + x - 1 + s, 1.0)  # > 0 wherever it is used
    a4 = np.where(may_drop, np.log(a) - np.log(xm1) - (r + x) * log_alpha_tx, -np.inf)
    mix = np.logaddexp(a3, a4)
    ll = float(np.sum(w * (a1 + a2 + mix)))
    if not gradient:
        return ll, np.zeros(4)
    w3, w4 = np.exp(a3 - mix), np.exp(a4 - mix)  # the two terms' shares: in [0, 1], w4 = 0 where -inf
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * log_alpha_t - w4 * log_alpha_tx
    d_alpha = r / alpha - w3 * (r + x) / (alpha + big_t) - w4 * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x + s) + w4 / a
    d_b = digamma(a + b) + digamma(b + x + s) - digamma(b) - digamma(a + b + x + s) - w4 / xm1
    return ll, np.array([np.sum(w * d) for d in (d_r, d_alpha, d_a, d_b)])


def fit_bgnbd(x: Vector, t_x: Vector, big_t: Vector, penalizer: float = 0.0, modified: bool = False) -> BetaGeo:
    """Maximum likelihood BG/NBD (``modified``: MBG/NBD) on the customers' (x, t_x, T) in one time unit."""
    return _fit_bgnbd(Grouped.of(x, t_x, big_t), penalizer, modified)


def bootstrap_bgnbd(
    x: Vector, t_x: Vector, big_t: Vector, draws: int, penalizer: float = 0.0, modified: bool = False, seed: int = 0
) -> list[BetaGeo]:
    """``draws`` refits on customers resampled with replacement (the grouped rows' weights drawn
    from a multinomial): the parameters' sampling uncertainty, for the prediction intervals. A
    resample whose fit does not converge is left out."""
    data, rng = Grouped.of(x, t_x, big_t), np.random.default_rng(seed)
    customers, fits = int(data.weights.sum()), []
    for _ in range(draws):
        weights = rng.multinomial(customers, data.weights / customers).astype(float)
        kept = weights > 0
        try:
            fits.append(_fit_bgnbd(Grouped(data.rows[kept], weights[kept]), penalizer, modified))
        except FitFailed:
            continue
    return fits


def _fit_bgnbd(data: Grouped, penalizer: float, modified: bool) -> BetaGeo:
    start = np.array([1.0, max(float(np.average(data.rows[:, 2], weights=data.weights)), 1e-3), 1.0, 1.0])
    name = "MBG/NBD" if modified else "BG/NBD"
    params, ll = _maximise(lambda p: bgnbd_log_likelihood(p, data, True, modified), start, penalizer, name)
    r, alpha, a, b = (float(v) for v in params)
    return BetaGeo(r, alpha, a, b, log_likelihood=ll, modified=modified)


@dataclass(frozen=True)
class GammaGamma:
    """Spend per order ~ Gamma(p, nu), nu ~ Gamma(q, gamma), across a customer's orders."""

    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")

    def expected_spend(self, x: Vector, zbar: Vector) -> Vector:
        """E[M | x, zbar]: the customer's expected average spend per order."""
        x, zbar = np.asarray(x, dtype=float), np.asarray(zbar, dtype=float)
        return (self.v + x * zbar) * self.p / (self.p * x + self.q - 1)  # type: ignore[no-any-return]


def gamma_gamma_log_likelihood(params: Vector, data: Grouped, gradient: bool = False) -> tuple[float, Vector]:
    """The weighted log-likelihood at ``params`` = (p, q, v) of rows (x > 0, zbar > 0), and its
    gradient in them."""
    p, q, v = params
    x, zbar = data.rows.T
    w = data.weights
    px = p * x
    log_x, log_zbar, log_total = np.log(x), np.log(zbar), np.log(x * zbar + v)
    ll_rows = (-betaln(px, q) + q * np.log(v) + (px - 1) * log_zbar + px * log_x
               - (px + q) * log_total)  # fmt: skip
    ll = float(np.sum(w * ll_rows))
    if not gradient:
        return ll, np.zeros(3)
    d_p = x * (digamma(px + q) - digamma(px) + log_zbar + log_x - log_total)
    d_q = digamma(px + q) - digamma(q) + np.log(v) - log_total
    d_v = q / v - (px + q) / (x * zbar + v)
    return ll, np.array([np.sum(w * d) for d in (d_p, d_q, d_v)])


def fit_gamma_gamma(x: Vector, zbar: Vector, penalizer: float = 0.0) -> GammaGamma:
    """Maximum likelihood Gamma-Gamma on repeat customers (x > 0) with positive mean spend, the
    mean spends grouped to the cent (money's own unit: a million customers fold into a few tens
    of thousands of rows; the likelihood moves by under 1e-4 of a cent's share)."""
    x, zbar = np.asarray(x, dtype=float), np.asarray(zbar, dtype=float)
    keep = (x > 0) & (np.round(zbar, 2) > 0)  # a mean spend that rounds to 0.00 has no log
    data = Grouped.of(x[keep], zbar[keep], decimals=2)
    params, ll = _maximise(lambda p: gamma_gamma_log_likelihood(p, data, gradient=True), np.ones(3), penalizer,
                           "Gamma-Gamma")  # fmt: skip
    p, q, v = (float(value) for value in params)
    return GammaGamma(p, q, v, log_likelihood=ll)


def _maximise(log_likelihood: LogLikelihood, start: Vector, penalizer: float, name: str) -> tuple[Vector, float]:
    """Minimise the negative penalised log-likelihood over log-parameters (all positive), each
    within +-``LOG_BOUND``: a parameter that runs off to its bound means the likelihood has no
    finite optimum there, which is a failure to converge as much as a stalled search is."""

    def objective(theta: Vector) -> tuple[float, Vector]:
        params = np.exp(theta)
        ll, grad = log_likelihood(params)
        value = -ll + penalizer * float(np.sum(params**2))
        return value, -(grad * params) + penalizer * 2 * params**2

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    result = minimize(objective, np.log(start), jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 2000, "gtol": 1e-8, "ftol": 1e-14})  # fmt: skip
    if not result.success:  # a line search that stalls near the optimum
        result = minimize(lambda theta: objective(theta)[0], result.x, method="Nelder-Mead", bounds=bounds,
                          options={"maxiter": 20_000, "xatol": 1e-8, "fatol": 1e-10})  # fmt: skip
    if not result.success:
        raise FitFailed(f"{name} did not converge: {result.message} (try a penalizer, e.g. 0.001)")
    if np.any(np.abs(result.x) > LOG_BOUND - 1e-3):
        ran_off = ", ".join(f"{value:.3g}" for value in np.exp(result.x))
        raise FitFailed(f"{name} did not converge: a parameter ran off to its bound ({ran_off}: the likelihood has no "
                        "finite optimum; try a penalizer, e.g. 0.001)")  # fmt: skip
    params = np.exp(result.x)
    return params, float(log_likelihood(params)[0])
