"""GIVEN a real order history (Online Retail II as Segment messages) WHEN it is replayed through
the embedded stack once cleanly and once with 5% of the functions' AWS calls throttled, failed or
their answers lost, and containers crashing mid-batch, THEN every profile is the same: nothing
lost, nothing counted twice."""

from __future__ import annotations

import time

from embedded.stack import EmbeddedStack
from tests.data import RETAIL, needs
from tests.replay import comparable, online_retail_messages, replay, wait_for_profiles

pytestmark = needs(RETAIL)
FAULTS = "dynamodb=0.05:lost kinesis=0.05 events=0.05:error sqs=0.05 crash=0.005"
CUSTOMERS = 40


def test_a_replay_under_injected_faults_ends_with_the_same_profiles(embedded: EmbeddedStack, api: str) -> None:
    assert embedded.moto is not None
    clean_messages = online_retail_messages(CUSTOMERS, prefix="clean-")
    faulty_messages = online_retail_messages(CUSTOMERS, prefix="faulty-")
    replay(api, clean_messages)
    clean = wait_for_profiles(api, clean_messages)

    embedded.inject(FAULTS)
    try:
        started = time.monotonic()
        replay(api, faulty_messages)
        faulty = wait_for_profiles(api, faulty_messages)
        print(f"faulty replay of {len(faulty_messages)} messages: {time.monotonic() - started:.1f}s;"
              f" injected {dict(embedded.moto.faults.injected)}")  # fmt: skip
    finally:
        embedded.inject("")

    assert sum(embedded.moto.faults.injected.values()) >= 10  # the faults really happened
    assert len(faulty) == len(clean) == CUSTOMERS
    for user, profile in clean.items():
        twin = faulty[user.replace("clean-", "faulty-")]
        assert comparable(twin) == comparable(profile), user
