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


class Predictions(BaseModel):
    """The value model's predictions for a buyer, as of ``as_of``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    p_alive: float = Field(alias="pAlive", description="probability the customer has not lapsed for good")
    expected_orders_90d: float = Field(alias="expectedOrders90d", description="orders expected in the next 90 days")
    expected_order_value: float = Field(alias="expectedOrderValue", description="expected spend per order")
    clv_12m: float = Field(alias="clv12m", description="value of the next 12 months' orders, discounted, base currency")
    churn_risk: float = Field(alias="churnRisk", description="probability of no order in the churn horizon")
    model_version: str = Field(alias="modelVersion")
    as_of: AwareDatetime = Field(alias="asOf")

    def moved(self, other: Predictions | None, tolerance: float = 0.01) -> bool:
        """Whether these differ from ``other`` enough to be written: a probability by more than
        ``tolerance``, or an amount by more than that fraction. (A refit that predicts the same
        rewrites nobody: ``modelVersion`` names the model that last changed the numbers.)"""
        if other is None:
            return True
        probabilities = (self.p_alive - other.p_alive, self.churn_risk - other.churn_risk)
        amounts = (
            (self.expected_orders_90d, other.expected_orders_90d),
            (self.clv_12m, other.clv_12m),
            (self.expected_order_value, other.expected_order_value),
        )
        return any(abs(d) > tolerance for d in probabilities) or any(
            abs(a - b) > tolerance * max(abs(a), abs(b), 1e-9) for a, b in amounts
        )
