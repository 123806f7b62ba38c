"""What the value model predicts for a customer, as the profile stores and the API shows it."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Driver(BaseModel):
    """One reason for the churn risk: the customer's value of a feature, the population's
    typical (median) value, and how much the risk would fall (or rise, if negative) were the
    customer typical in this feature alone."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    feature: str
    value: float | None
    typical: float | None
    effect: float


Interval = tuple[int, int]  # [low, high]: orders, or whole units of the base currency


class Predictions(BaseModel):
    """The value model's predictions for a buyer, as of ``as_of``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    p_alive: float = Field(alias="pAlive", description="probability the customer has not lapsed for good")
    expected_orders_90d: float = Field(alias="expectedOrders90d", description="orders expected in the next 90 days")
    expected_order_value: float = Field(alias="expectedOrderValue", description="expected spend per order")
    clv_12m: float = Field(alias="clv12m", description="value of the next 12 months' orders, discounted, base currency")
    churn_risk: float = Field(alias="churnRisk", description="probability of no order in the churn horizon")
    expected_orders_90d_p80: Interval | None = Field(
        default=None, alias="expectedOrders90dP80", description="[low, high]: orders in the next 90 days, 80 % likely"
    )
    expected_orders_90d_p95: Interval | None = Field(
        default=None, alias="expectedOrders90dP95", description="[low, high]: orders in the next 90 days, 95 % likely"
    )
    clv_12m_p80: Interval | None = Field(
        default=None, alias="clv12mP80", description="[low, high]: 12-month value, 80 % likely, whole currency units"
    )
    clv_12m_p95: Interval | None = Field(
        default=None, alias="clv12mP95", description="[low, high]: 12-month value, 95 % likely, whole currency units"
    )
    model_version: str = Field(alias="modelVersion")
    as_of: AwareDatetime = Field(alias="asOf")

    def moved(self, other: Predictions | None, tolerance: float = 0.01) -> bool:
        """Whether these differ from ``other`` enough to be written: a probability by more than
        ``tolerance``, an amount or an interval's end by more than that fraction, or an interval
        appeared or went. (A refit that predicts the same rewrites nobody: ``modelVersion`` names
        the model that last changed the numbers.)"""
        if other is None:
            return True
        pairs = list(zip(self.intervals(), other.intervals(), strict=True))
        if any((mine is None) != (theirs is None) for mine, theirs in pairs):
            return True  # (the first model with intervals rewrites every buyer once)
        probabilities = (self.p_alive - other.p_alive, self.churn_risk - other.churn_risk)
        amounts = [
            (self.expected_orders_90d, other.expected_orders_90d),
            (self.clv_12m, other.clv_12m),
            (self.expected_order_value, other.expected_order_value),
            *((a, b) for mine, theirs in pairs if mine and theirs for a, b in zip(mine, theirs, strict=True)),
        ]
        return any(abs(d) > tolerance for d in probabilities) or any(
            abs(a - b) > tolerance * max(abs(a), abs(b), 1e-9) for a, b in amounts
        )

    def intervals(self) -> tuple[Interval | None, ...]:
        return self.expected_orders_90d_p80, self.expected_orders_90d_p95, self.clv_12m_p80, self.clv_12m_p95
