"""Online Retail II as profiles and a trained model, in memory, through the same import and
retraining code the functions run (for the models test and the benchmark's model section)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from audience.domain.money import Currencies
from audience.domain.profile import Profile
from audience.segmentation.drift import PromotionPolicy
from audience.services.imports import Importing
from audience.services.retraining import RetrainOutcome
from tests.data import RETAIL
from tests.unit.fakes import MemoryBucket, MemoryProfiles, MemoryRegistry
from tests.unit.jobs import retraining

AS_OF = datetime(2010, 12, 10, tzinfo=UTC)  # the day after the file's last invoice


@dataclass
class Segment:
    name: str
    customers: int
    share: float
    revenue_share: float


def _imported() -> tuple[MemoryBucket, MemoryProfiles, Any]:
    bucket, profiles = MemoryBucket(), MemoryProfiles()
    key = "imports/orders/online-retail/2009-2010.csv.gz"
    bucket.objects[key] = RETAIL.read_bytes()
    return bucket, profiles, Importing(bucket, profiles, Currencies("GBP")).run(key, AS_OF)


def imported_profiles() -> list[Profile]:
    """Every customer of the file, as the importer folds them (redirects left out)."""
    return [p for p in _imported()[1].items.values() if p.merged_into is None]


def online_retail_model() -> tuple[RetrainOutcome, list[Segment], dict[str, Any]]:
    bucket, profiles, manifest = _imported()
    outcome = retraining(profiles, bucket, MemoryRegistry(), PromotionPolicy()).retrain(AS_OF)
    customers: dict[str, int] = defaultdict(int)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for profile in profiles.items.values():
        if profile.segments is not None:
            customers[profile.segments.name] += 1
            revenue[profile.segments.name] += profile.revenue - profile.refunded
    total_customers, total_revenue = sum(customers.values()), sum(revenue.values(), Decimal(0))
    segments = [Segment(name, n, n / total_customers, float(revenue[name] / total_revenue))
                for name, n in sorted(customers.items(), key=lambda kv: -revenue[kv[0]])]  # fmt: skip
    return outcome, segments, {"customers": total_customers, "orders": manifest.orders}
