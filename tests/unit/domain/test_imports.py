"""The order-file cleaner: every row accounted for, every bad row rejected with its reasons."""

from __future__ import annotations

import gzip
import io
import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from audience.domain.imports import ColumnMapping, Reject, builtin_mapping
from audience.domain.money import Currencies
from audience.domain.orders import OrderFileCleaner, orders_by_customer

CURRENCIES = Currencies("USD", {"GBP": Decimal("1.25"), "EUR": Decimal("1.10")})
RETAIL = builtin_mapping("online-retail")
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"


def clean(data: bytes, mapping: ColumnMapping = RETAIL) -> tuple[OrderFileCleaner, list, list[Reject]]:
    rejects: list[Reject] = []
    cleaner = OrderFileCleaner(mapping, CURRENCIES, rejects.append)
    lines = list(cleaner.records(io.BytesIO(data)))
    assert cleaner.accounting.reconciles(), cleaner.accounting
    return cleaner, lines, rejects


def test_the_shipped_mappings_are_valid() -> None:
    assert RETAIL.columns["customer_id"] == "Customer ID" and RETAIL.timezone == "Europe/London"
    assert builtin_mapping("orders").columns["total"] == "total"


def test_a_mapping_without_what_an_order_needs_is_refused() -> None:
    with pytest.raises(ValidationError, match="columns must map customer_id, total"):
        ColumnMapping.model_validate({"name": "bad", "columns": {"order_id": "id", "date": "when"}})


def test_lines_are_cleaned_to_utc_and_iso_countries() -> None:
    data = (
        HEADER
        + "489434,85048,LIGHTS,12,2010-07-01 09:00:00,6.95,13085.0,United Kingdom\n"
        + "489435,POST,POSTAGE,1,2010-01-01 09:00:00,18,12345,EIRE\n"
    ).encode()
    cleaner, lines, rejects = clean(data)
    first, postage = lines
    assert first.customer_id == "13085" and first.amount == Decimal("83.40") and first.currency == "GBP"
    assert first.at.isoformat() == "2010-07-01T08:00:00+00:00"  # British Summer Time to UTC
    assert first.country == "GB" and first.is_product
    assert not postage.is_product and postage.at.isoformat() == "2010-01-01T09:00:00+00:00"
    assert cleaner.accounting.countries_unknown == 1  # EIRE is no ISO 3166 name
    assert rejects == []


def test_every_bad_row_is_rejected_with_its_line_values_and_reasons() -> None:
    data = (
        HEADER
        + "1,A,x,2,2010-01-01 09:00:00,1.5,,United Kingdom\n"  # no customer
        + "2,A,x,2,yesterday-ish,1.5,7,United Kingdom\n"  # bad date
        + "3,A,x,2,2010-01-01 09:00:00,-1,7,United Kingdom\n"  # negative price
        + "C4,A,x,2,2010-01-01 09:00:00,1,7,United Kingdom\n"  # cancellation, positive quantity
        + "5,A,x,two,2010-01-01 09:00:00,1,7,United Kingdom\n"  # not a number
        + "6,A,x,1,2010-01-01 09:00:00,1,7\n"
    ).encode()  # a field short
    _, lines, rejects = clean(data)
    assert lines == []
    assert [(r.line, r.reasons) for r in rejects] == [
        (2, ["customer id missing"]),
        (3, ["date 'yesterday-ish' not understood"]),
        (4, ["price must be positive"]),
        (5, ["a cancellation with a positive quantity"]),
        (6, ["quantity 'two' is not a number"]),
        (7, ["has 7 fields, the header 8"]),
    ]
    assert rejects[0].values["Invoice"] == "1"
    json.loads(rejects[0].to_json())


def test_exact_duplicate_rows_are_counted_not_loaded() -> None:
    row = "1,A,x,2,2010-01-01 09:00:00,1.5,7,United Kingdom\n"
    cleaner, lines, _ = clean((HEADER + row + row + row).encode())
    assert len(lines) == 1 and cleaner.accounting.duplicates == 2 and cleaner.accounting.rows_read == 3


def test_bytes_that_are_not_utf8_reject_only_their_row() -> None:
    data = (
        HEADER.encode() + b"1,A,caf\xe9,2,2010-01-01 09:00:00,1.5,7,France\n2,A,ok,1,2010-01-01 09:00:00,1,7,France\n"
    )
    _, lines, rejects = clean(data)
    assert [line.order_id for line in lines] == ["2"]
    assert rejects[0].reasons == ["not valid UTF-8"] and rejects[0].values["Description"] == "caf\ufffd"


def test_wrong_headers_reject_every_row_with_the_reason() -> None:
    data = b"id,when,amount\n1,2010-01-01,3\n2,2010-01-02,4\n"
    cleaner, lines, rejects = clean(data)
    assert lines == [] and cleaner.accounting.rejected == 2
    assert rejects[0].reasons == [
        "the file's header lacks 'Invoice', 'Customer ID', 'InvoiceDate', a total, or a quantity and a unit price"
    ]


def test_an_empty_file_is_a_clear_file_error() -> None:
    cleaner, lines, _ = clean(b"")
    assert lines == [] and cleaner.accounting.file_errors == ["empty file: no header and no rows"]


def test_a_truncated_gzip_keeps_what_was_read_and_says_so() -> None:
    rows = "".join(f"{i},A,x,1,2010-01-01 09:00:00,1,{i},France\n" for i in range(20_000))
    packed = gzip.compress((HEADER + rows).encode())
    cleaner, lines, _ = clean(packed[: len(packed) // 2])
    assert 0 < len(lines) < 20_000
    assert cleaner.accounting.file_errors and "ends early" in cleaner.accounting.file_errors[0]


def test_other_delimiters_gzip_and_json_lines() -> None:
    orders = builtin_mapping("orders")
    csv_text = "order_id;customer_id;date;total;currency\no1;c1;2010-01-01T10:00:00+01:00;10.00;EUR\n"
    _, lines, _ = clean(gzip.compress(csv_text.encode()), orders)
    assert lines[0].amount == Decimal("10.00") and lines[0].at.hour == 9
    jsonl = "\n".join(
        json.dumps(r)
        for r in [
            {"order_id": "o2", "customer_id": "c2", "date": "2010-02-03", "total": 5},
            {"order_id": "o3"},
            ["not", "an", "object"],
        ]
    )
    _, lines, rejects = clean(jsonl.encode(), orders)
    assert [line.order_id for line in lines] == ["o2"]
    missing_fields, not_an_object = rejects
    assert {"customer id missing", "date '' not understood"} <= set(missing_fields.reasons)
    assert not_an_object.reasons[0].startswith("has ") and "row" in not_an_object.values


def test_orders_group_lines_convert_once_and_cancellations_refund() -> None:
    data = (
        HEADER
        + "10,A,x,2,2010-01-01 09:00:00,1.10,7,France\n"
        + "10,POST,postage,1,2010-01-01 09:00:00,2,7,France\n"
        + "C11,A,x,-1,2010-01-02 09:00:00,1.10,7,France\n"
    ).encode()
    _, lines, _ = clean(data)
    orders = orders_by_customer(lines, CURRENCIES)["7"]
    order, cancellation = sorted(orders, key=lambda o: o.order_id)
    assert (order.amount, order.is_refund, order.lines) == (Decimal("5.25"), False, 2)  # 4.20 GBP once at 1.25
    assert (cancellation.amount, cancellation.is_refund) == (Decimal("1.38"), True)
