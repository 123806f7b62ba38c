"""The Online Retail II file, cleaned by us and computed independently with pandas under the same rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audience.domain.imports import Reject, builtin_mapping
from audience.domain.money import Currencies
from audience.domain.orders import OrderFileCleaner, orders_by_customer
from tests.data import RETAIL, needs

FILE = RETAIL


@needs(FILE)
def test_online_retail_ii_reconciles_and_matches_an_independent_computation() -> None:
    pd = pytest.importorskip("pandas")
    rejects: list[Reject] = []
    cleaner = OrderFileCleaner(builtin_mapping("online-retail"), Currencies("GBP", {}), rejects.append)
    with FILE.open("rb") as raw:
        orders = orders_by_customer(cleaner.records(raw), Currencies("GBP", {}))
    accounting = cleaner.accounting
    assert accounting.rows_read == 525_461 and accounting.duplicates == 6_865
    assert accounting.reconciles() and accounting.rejected == len(rejects)

    # Independently: the same rules, written with pandas.
    frame = pd.read_csv(FILE, dtype={"Invoice": str, "StockCode": str, "Customer ID": str})
    frame = frame.drop_duplicates()
    cancel = frame["Invoice"].str.startswith("C")
    valid = (
        frame["Customer ID"].notna()
        & (frame["Price"] > 0)
        & (frame["Quantity"] != 0)
        & ~(cancel & (frame["Quantity"] > 0))
    )
    frame = frame[valid].assign(
        amount=lambda f: f["Quantity"] * f["Price"], customer=lambda f: f["Customer ID"].str.removesuffix(".0")
    )
    per_order = frame.groupby(["customer", "Invoice"])["amount"].sum().reset_index()
    per_order["refund"] = per_order["Invoice"].str.startswith("C") | (per_order["amount"] < 0)
    bought = per_order[~per_order["refund"]]
    expected_orders = bought.groupby("customer").size().to_dict()
    expected_revenue = bought.groupby("customer")["amount"].sum().round(2).to_dict()

    assert accounting.loaded == len(frame)
    assert len(orders) == frame["customer"].nunique()
    ours_orders = {c: sum(not o.is_refund for o in os) for c, os in orders.items()}
    assert {c: n for c, n in ours_orders.items() if n} == expected_orders
    ours_revenue = {c: sum((o.amount for o in os if not o.is_refund), Decimal(0)) for c, os in orders.items()}
    assert {c: float(r) for c, r in ours_revenue.items() if c in expected_revenue} == pytest.approx(
        expected_revenue, abs=0.005
    )
