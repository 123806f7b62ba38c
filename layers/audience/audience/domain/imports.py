"""Exports, read and accounted for: a CSV or JSON Lines file (optionally gzip) to rows through a
column mapping, every row clean, rejected (with the line number, the original values and every
reason) or a duplicate: rows read = loaded + rejected + duplicates, always. ``orders`` and
``customers`` clean their kind's rows; the service turns them into the same events the stream
folds, so imported history and live events make one profile.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import itertools
import json
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from typing import IO, Any, BinaryIO, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

import pycountry
from dateutil import parser as date_parser
from pydantic import BaseModel, ConfigDict, Field, model_validator

ORDER_FIELDS = (
    "order_id", "customer_id", "date", "quantity", "unit_price", "total", "currency",
    "product_id", "description", "category", "country",
)  # fmt: skip
CUSTOMER_FIELDS = (
    "customer_id", "email", "phone", "first_name", "last_name", "name", "address", "city", "postcode",
    "country", "signup_date", "consent_analytics", "consent_personalization", "consent_marketing",
)  # fmt: skip
FIELDS = {"orders": ORDER_FIELDS, "customers": CUSTOMER_FIELDS}
SNIFF_BYTES = 64 * 1024
DATE_CACHE = 100_000  # distinct date texts remembered per file
T = TypeVar("T")


class ColumnMapping(BaseModel):
    """How an export's columns and formats map to ours (``mappings/<name>.json``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    kind: Literal["orders", "customers"] = "orders"
    columns: dict[str, str]
    delimiter: str | None = Field(default=None, min_length=1, max_length=1, description="sniffed when absent")
    date_formats: list[str] = Field(default_factory=list, description="strptime formats tried before dateutil")
    day_first: bool = False
    timezone: str = "UTC"
    # orders
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    cancellation_prefixes: list[str] = Field(default_factory=lambda: ["C"])
    non_product_codes: list[str] = Field(default_factory=list)
    # customers
    phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$", description="for numbers without +country code")
    match_threshold: float = Field(default=90, ge=50, le=100, description="rapidfuzz name similarity to merge")
    keep_extra_columns: bool = Field(default=True, description="unmapped columns become traits")

    @model_validator(mode="after")
    def _has_what_a_row_needs(self) -> ColumnMapping:
        unknown = sorted(set(self.columns) - set(FIELDS[self.kind]))
        if unknown:
            raise ValueError(f"columns has no field {', '.join(unknown)} for {self.kind} (known: {FIELDS[self.kind]})")
        missing = missing_fields(self.kind, set(self.columns))
        if missing:
            raise ValueError(f"columns must map {', '.join(missing)}")
        ZoneInfo(self.timezone)  # raises for an unknown zone
        return self


def missing_fields(kind: str, present: set[str]) -> list[str]:
    """What a file of ``kind`` cannot do without."""
    if kind == "customers":
        return [] if "customer_id" in present else ["customer_id"]
    missing = [f for f in ("order_id", "customer_id", "date") if f not in present]
    if "total" not in present and not {"quantity", "unit_price"} <= present:
        missing.append("total (or quantity and unit_price)")
    return missing


def builtin_mapping(name: str) -> ColumnMapping:
    """A mapping shipped with the package (``orders``, ``online-retail``)."""
    text = resources.files("audience.domain").joinpath("mappings", f"{name}.json").read_text()
    return ColumnMapping.model_validate_json(text)


@dataclass(frozen=True)
class Reject:
    line: int
    values: dict[str, Any]
    reasons: list[str]

    def to_json(self) -> str:
        return json.dumps({"line": self.line, "values": self.values, "reasons": self.reasons}, default=str)


@dataclass
class Accounting:
    """Every row read is loaded, rejected or a duplicate; the manifest prints this."""

    rows_read: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    file_errors: list[str] = field(default_factory=list)
    countries_unknown: int = 0
    non_product_lines: int = 0
    cancellation_lines: int = 0

    def reconciles(self) -> bool:
        return self.rows_read == self.loaded + self.rejected + self.duplicates


class FileCleaner(Generic[T]):
    """Streams an export through the steps every file shares (decompress, decode, header,
    exact-duplicate removal, width check) and hands each row to ``_clean``; ``records()`` yields
    what ``_clean`` makes of a row and records rejects and duplicates as it goes."""

    def __init__(self, mapping: ColumnMapping, on_reject: Callable[[Reject], None]) -> None:
        """``on_reject`` receives each rejected row as it is found (the service streams them to
        ``rejects/<import-id>.jsonl``; nothing accumulates in memory)."""
        self.mapping, self.on_reject = mapping, on_reject
        self.accounting = Accounting()
        self._seen: set[bytes] = set()
        self._date_formats = tuple(mapping.date_formats)
        self._dates: dict[str, datetime | None] = {}

    def records(self, raw: IO[bytes]) -> Iterator[T]:
        read = loaded = 0  # counted in locals: this loop runs for every row of the file
        try:
            rows = _rows(raw, self.mapping)
            header = next(rows, None)
            if header is None:
                self.accounting.file_errors.append("empty file: no header and no rows")
                return
            columns = [name.strip() for name in header[1]]
            width = len(columns)
            index, missing = self._columns(columns)
            self._start(columns, index)
            first_time, clean = self._first_time, self._clean
            for line, values in rows:
                read += 1
                if missing:
                    self._reject(line, columns, values, [f"the file's header lacks {', '.join(missing)}"])
                    continue
                utf8 = first_time(values)
                if utf8 is None:
                    continue
                if len(values) != width:
                    self._reject(line, columns, values, [f"has {len(values)} fields, the header {width}"])
                    continue
                record = clean(line, columns, values, utf8)
                if record is not None:
                    loaded += 1
                    yield record
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            self.accounting.file_errors.append(f"file ends early or is corrupt after {read} rows: {exc}")
        finally:
            self.accounting.rows_read += read
            self.accounting.loaded += loaded

    def _start(self, columns: list[str], index: dict[str, int]) -> None:
        """Prepare for rows under this header."""

    def _clean(self, line: int, columns: list[str], values: list[str], utf8: bool) -> T | None:
        """The clean record of a row (``utf8``: whether it decoded), or None after calling ``_reject``."""
        raise NotImplementedError

    def _columns(self, header: list[str]) -> tuple[dict[str, int], list[str]]:
        positions = {name: i for i, name in enumerate(header)}
        index = {f: positions[c] for f, c in self.mapping.columns.items() if c in positions}
        missing = missing_fields(self.mapping.kind, set(index))
        named = {f: repr(c) for f, c in self.mapping.columns.items()}
        return index, [named.get(f, "a total, or a quantity and a unit price") for f in missing]

    def _first_time(self, values: list[str]) -> bool | None:
        """None for an exact duplicate of an earlier row (counted); else whether the row is UTF-8."""
        joined = "\x1f".join(values)
        try:
            data, utf8 = joined.encode(), True
        except UnicodeEncodeError:  # undecodable bytes came through as lone surrogates
            data, utf8 = joined.encode(errors="surrogateescape"), False
        key = hashlib.blake2b(data, digest_size=12).digest()
        if key in self._seen:
            self.accounting.duplicates += 1
            return None
        self._seen.add(key)
        return utf8

    def _date(self, text: str) -> datetime | None:
        """Dates repeat across an order's lines: a dict makes most rows free."""
        if text in self._dates:
            return self._dates[text]
        if len(self._dates) >= DATE_CACHE:
            self._dates.clear()
        at = self._dates[text] = _parse_date(text, self._date_formats, self.mapping.day_first, self.mapping.timezone)
        return at

    def _reject(self, line: int, header: list[str], values: list[str], reasons: list[str]) -> None:
        self.accounting.rejected += 1
        for reason in reasons:
            self.accounting.rejected_by_reason[_reason_kind(reason)] += 1
        readable = (
            values
            if is_utf8(values)
            else [v.encode("utf-8", "surrogateescape").decode(errors="replace") for v in values]
        )
        shown: dict[str, Any] = (
            dict(zip(header, readable, strict=True)) if len(values) == len(header) else {"row": readable}
        )
        self.on_reject(Reject(line, shown, reasons))


def _rows(raw: IO[bytes], mapping: ColumnMapping) -> Iterator[tuple[int, list[str]]]:
    """(line number, values) of every row, the header first; CSV (any delimiter) or JSON Lines."""
    buffered: Any = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[type-var]
    stream: BinaryIO = gzip.GzipFile(fileobj=buffered) if buffered.peek(2)[:2] == b"\x1f\x8b" else buffered  # type: ignore[assignment]
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    sample = text.read(SNIFF_BYTES)
    if not sample.strip():
        return
    rest = _chain(sample, text)
    if sample.lstrip().startswith("{"):
        yield from _json_lines(rest, mapping)
        return
    delimiter = mapping.delimiter or _sniff(sample)
    for number, values in enumerate(csv.reader(rest, delimiter=delimiter), start=1):
        if values:
            yield number, values


def _json_lines(lines: Iterator[str], mapping: ColumnMapping) -> Iterator[tuple[int, list[str]]]:
    """The header is the mapped columns, and (for customers) the other keys of the first record."""
    header = list(dict.fromkeys(mapping.columns.values()))
    first = next(lines, "")
    if mapping.kind == "customers" and mapping.keep_extra_columns:
        with contextlib.suppress(ValueError, TypeError):  # not an object: the line is rejected below
            header += [k for k in json.loads(first) if k not in header]
    yield 0, header
    for number, line in enumerate(itertools.chain([first], lines), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            yield number, [line.strip()] + [""] * (len(header))  # a width mismatch: rejected with the raw text
            continue
        yield number, ["" if record.get(column) is None else str(record.get(column)) for column in header]


def _chain(first: str, rest: io.TextIOWrapper) -> Iterator[str]:
    """The sample read for sniffing, then the rest of the stream, as lines."""
    tail = ""
    for chunk in itertools.chain([first], iter(lambda: rest.read(SNIFF_BYTES), "")):  # lazily: a file streams
        lines = (tail + chunk).splitlines(keepends=True)
        tail = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        yield from lines
    if tail:
        yield tail


def _sniff(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def source_id(text: str) -> str:
    return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text  # 13085.0 from spreadsheets


def is_utf8(values: list[str]) -> bool:
    """Undecodable bytes come through as lone surrogates."""
    try:
        "".join(values).encode()
    except UnicodeEncodeError:
        return False
    return True


def _parse_date(text: str, formats: tuple[str, ...], day_first: bool, zone: str) -> datetime | None:
    if not text:
        return None
    moment = None
    for pattern in formats:
        try:
            moment = datetime.strptime(text, pattern)
            break
        except ValueError:
            continue
    if moment is None:
        try:
            moment = date_parser.parse(text, dayfirst=day_first)
        except (ValueError, OverflowError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC)


@lru_cache(maxsize=4096)
def iso_country(text: str) -> str | None:
    """ISO 3166 alpha-2 from a name or code, by pycountry; None when it names no country."""
    if not text:
        return None
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        pass
    try:  # "Korea", "RSA"-style names: accept only an unambiguous match
        matches = pycountry.countries.search_fuzzy(text) if len(text) > 3 else []
    except LookupError:
        return None
    return str(matches[0].alpha_2) if len(matches) == 1 else None


def _reason_kind(reason: str) -> str:
    """Group reasons for the manifest: the text before any quoted value."""
    return reason.split(" '", 1)[0].split(" (", 1)[0] if "'" in reason else reason
