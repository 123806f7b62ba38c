from datetime import UTC, datetime
from decimal import Decimal

import pytest

from audience.domain.errors import InvalidInput
from audience.domain.events import Identify, Page, Track, parse_order, parse_request
from audience.domain.money import Currencies

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CURRENCIES = Currencies("USD", {"EUR": Decimal("1.08")})


def errors_of(body: object) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_request(body, NOW)
    return {e.field: e.reason for e in caught.value.errors}


def test_a_single_track_message_is_parsed_and_stamped() -> None:
    [message] = parse_request(
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "timestamp": "2026-11-20T14:03:00+01:00",
            "properties": {"total": 12.5, "currency": "EUR"},
        },
        NOW,
        CURRENCIES,
    )
    assert isinstance(message, Track)
    assert message.customer_id == "u1"
    assert message.received_at == NOW
    assert message.occurred_at == datetime(2026, 11, 20, 13, 3, tzinfo=UTC)
    assert parse_order(message).amount == pytest.approx(12.5)
    assert message.message_id  # derived when the sender gave none


def test_a_batch_shares_its_context_under_each_messages_own() -> None:
    identify, page = parse_request(
        {
            "batch": [
                {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}, "context": {"locale": "fr"}},
                {"type": "page", "anonymousId": "a1", "name": "Home"},
            ],
            "context": {"locale": "en", "library": {"name": "analytics.js"}},
        },
        NOW,
    )
    assert isinstance(identify, Identify) and isinstance(page, Page)
    assert identify.context == {"locale": "fr", "library": {"name": "analytics.js"}}
    assert page.context["locale"] == "en"
    assert page.customer_id == "a1"


def test_without_a_timestamp_the_receiving_time_is_when_it_happened() -> None:
    [message] = parse_request({"type": "page", "anonymousId": "a1"}, NOW)
    assert message.timestamp is None
    assert message.occurred_at == NOW


def test_the_derived_message_id_is_the_same_for_the_same_payload_only() -> None:
    body = {"type": "track", "userId": "u1", "event": "Product Viewed", "timestamp": "2026-11-20T10:00:00Z"}
    first = parse_request(body, NOW)[0].message_id
    again = parse_request(body, datetime(2026, 11, 24, tzinfo=UTC))[0].message_id
    other = parse_request({**body, "event": "Product Added"}, NOW)[0].message_id
    assert first == again != other


def test_a_given_message_id_is_kept() -> None:
    [message] = parse_request({"type": "page", "anonymousId": "a1", "messageId": "m-1"}, NOW)
    assert message.message_id == "m-1"


def test_an_empty_user_id_is_no_user_id_as_rudderstack_sends_it_before_identify() -> None:
    [message] = parse_request({"type": "page", "userId": "", "anonymousId": "a-1", "name": "Home"}, NOW)
    assert message.user_id is None and message.customer_id == "a-1"
    assert errors_of({"type": "page", "userId": "", "anonymousId": ""}) == {
        "body": "either userId or anonymousId is required"
    }


def test_every_failing_field_is_named_with_its_path_and_reason() -> None:
    errors = errors_of(
        {
            "batch": [
                {"type": "track", "event": "Order Completed", "properties": {"total": "lots", "currency": "dollars"}},
                {"type": "identify", "userId": "u2", "timestamp": "2026-11-20T13:58:00"},
                {"type": "alias", "userId": "u2"},
                {"userId": "u3"},
                {"type": "track", "userId": "u4"},
            ]
        }
    )
    assert errors == {
        "batch[0]": "either userId or anonymousId is required",
        "batch[0].properties.total": "Input should be a valid decimal",
        "batch[0].properties.currency": "String should match pattern '^[A-Z]{3}$'",
        "batch[1].timestamp": "Input should have timezone info",
        "batch[2].previousId": "Field required",
        "batch[3].type": "type is required ('track', 'identify', 'page', 'screen', 'group' or 'alias')",
        "batch[4].event": "Field required",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [([1, 2], "body"), ("text", "body"), ({"batch": []}, "batch"), ({"batch": {"type": "page"}}, "batch")],
)
def test_a_body_of_the_wrong_shape_is_refused(body: object, field: str) -> None:
    assert field in errors_of(body)


def test_an_order_may_not_have_a_negative_total() -> None:
    errors = errors_of({"type": "track", "userId": "u", "event": "Order Completed", "properties": {"total": -3}})
    assert errors == {"properties.total": "Input should be greater than or equal to 0"}


def test_revenue_is_used_when_there_is_no_total() -> None:
    [message] = parse_request(
        {"type": "track", "userId": "u", "event": "Order Completed", "properties": {"revenue": "20.10"}}, NOW
    )
    assert isinstance(message, Track)
    order = parse_order(message)
    assert (str(order.amount), order.currency) == ("20.10", "USD")


def test_an_order_in_a_currency_without_a_rate_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_request(
            {"type": "track", "userId": "u", "event": "Order Refunded", "properties": {"total": 3, "currency": "XYZ"}},
            NOW,
            CURRENCIES,
        )
    [error] = caught.value.errors
    assert error.field == "properties.currency"
    assert error.reason == "no exchange rate from XYZ to USD (known: EUR, USD)"


def test_alias_needs_both_ids() -> None:
    [alias] = parse_request({"type": "alias", "previousId": "a1", "userId": "u1"}, NOW)
    assert alias.identities == ("u1", "a1")
