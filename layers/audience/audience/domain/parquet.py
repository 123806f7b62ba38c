"""A small Parquet writer: flat tables of optional columns, one row group, gzip pages.

Why not pyarrow: it is over 100 MB installed, and a Lambda function with its layers gets 250 MB
(the retrain function's numpy, scipy and scikit-learn already take ~155 MB). The profile
snapshot needs none of its features: a flat table of strings, integers, floats, booleans,
dates and timestamps is what Athena, Glue and DuckDB read from it. This module writes exactly
that (PLAIN encoding, RLE definition levels, GZIP pages, Thrift compact metadata) in ~150 lines
of plain Python; ``tests/unit/domain/test_parquet.py`` reads its files back with DuckDB.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

Kind = Literal["string", "int", "float", "bool", "date", "timestamp"]

# parquet.thrift: Type, ConvertedType, FieldRepetitionType, Encoding, CompressionCodec
_TYPE = {"string": 6, "int": 2, "float": 5, "bool": 0, "date": 1, "timestamp": 2}
_CONVERTED = {"string": 0, "date": 6, "timestamp": 10}  # UTF8, DATE, TIMESTAMP_MICROS
_OPTIONAL, _PLAIN, _RLE, _GZIP, _DATA_PAGE = 1, 0, 3, 2, 0
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


def write_table(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> bytes:
    """A Parquet file of ``rows`` (one value per column, None for null)."""
    out = bytearray(b"PAR1")
    chunks = []
    for index, column in enumerate(columns):
        values = [row[index] for row in rows]
        offset = len(out)
        page, uncompressed = _page(column, values)
        out += page
        chunks.append((column, offset, len(page), uncompressed, len(values)))
    schema = [_struct([(4, "string", "schema"), (5, "i32", len(columns))])]
    for column in columns:
        fields: list[tuple[int, str, Any]] = [(1, "i32", _TYPE[column.kind]), (3, "i32", _OPTIONAL),
                                              (4, "string", column.name)]  # fmt: skip
        if column.kind in _CONVERTED:
            fields.append((6, "i32", _CONVERTED[column.kind]))
        schema.append(_struct(fields))
    column_chunks = [
        _struct(
            [
                (2, "i64", offset),
                (
                    3,
                    "struct",
                    _struct(
                        [
                            (1, "i32", _TYPE[column.kind]),
                            (2, "list_i32", [_PLAIN, _RLE]),
                            (3, "list_string", [column.name]),
                            (4, "i32", _GZIP),
                            (5, "i64", count),
                            (6, "i64", uncompressed),
                            (7, "i64", size),
                            (9, "i64", offset),
                        ]
                    ),
                ),
            ]
        )
        for column, offset, size, uncompressed, count in chunks
    ]
    total = sum(uncompressed for _c, _o, _s, uncompressed, _n in chunks)
    row_group = _struct([(1, "list_struct", column_chunks), (2, "i64", total), (3, "i64", len(rows))])
    metadata = _struct([(1, "i32", 1), (2, "list_struct", schema), (3, "i64", len(rows)),
                        (4, "list_struct", [row_group]), (6, "string", "audience-engine parquet writer")])  # fmt: skip
    out += metadata + struct.pack("<I", len(metadata)) + b"PAR1"
    return bytes(out)


def _page(column: Column, values: list[Any]) -> tuple[bytes, int]:
    present = [v for v in values if v is not None]
    levels = _rle([0 if v is None else 1 for v in values])
    body = struct.pack("<I", len(levels)) + levels + _plain(column.kind, present)
    compressed = gzip.compress(body, mtime=0)
    header = _struct([(1, "i32", _DATA_PAGE), (2, "i32", len(body)), (3, "i32", len(compressed)),
                      (5, "struct", _struct([(1, "i32", len(values)), (2, "i32", _PLAIN), (3, "i32", _RLE),
                                             (4, "i32", _RLE)]))])  # fmt: skip
    return header + compressed, len(header) + len(body)


def _plain(kind: Kind, values: list[Any]) -> bytes:
    if kind == "string":
        encoded = [str(v).encode() for v in values]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    if kind == "int":
        return struct.pack(f"<{len(values)}q", *(int(v) for v in values))
    if kind == "float":
        return struct.pack(f"<{len(values)}d", *(float(v) for v in values))
    if kind == "date":
        return struct.pack(f"<{len(values)}i", *((v - _EPOCH).days for v in values))
    if kind == "timestamp":
        return struct.pack(f"<{len(values)}q", *(_micros(v) for v in values))
    packed = bytearray((len(values) + 7) // 8)  # bool: bit-packed, least significant bit first
    for i, v in enumerate(values):
        if v:
            packed[i // 8] |= 1 << (i % 8)
    return bytes(packed)


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _rle(levels: list[int]) -> bytes:
    """Definition levels (bit width 1) as RLE runs of the hybrid encoding."""
    out, i = bytearray(), 0
    while i < len(levels):
        j = i
        while j < len(levels) and levels[j] == levels[i]:
            j += 1
        out += _varint((j - i) << 1) + bytes([levels[i]])
        i = j
    return bytes(out)


# ---------------------------------------------------------------- Thrift compact protocol

_COMPACT = {"i32": 5, "i64": 6, "string": 8, "struct": 12}


def _struct(fields: list[tuple[int, str, Any]]) -> bytes:
    out, last = bytearray(), 0
    for field_id, kind, value in fields:
        wire = 9 if kind.startswith("list_") else _COMPACT[kind]
        delta = field_id - last
        out += bytes([(delta << 4) | wire]) if 0 < delta <= 15 else bytes([wire]) + _varint(_zigzag(field_id))
        last = field_id
        out += _value(kind, value)
    return bytes(out + b"\x00")


def _value(kind: str, value: Any) -> bytes:
    if kind in ("i32", "i64"):
        return _varint(_zigzag(value))
    if kind == "string":
        data: bytes = value.encode()
        return _varint(len(data)) + data
    if kind == "struct":
        return bytes(value)  # already encoded
    element = kind.removeprefix("list_")
    size = len(value)
    wire = _COMPACT[element]
    header = bytes([(size << 4) | wire]) if size < 15 else bytes([0xF0 | wire]) + _varint(size)
    return header + b"".join(_value(element, v) for v in value)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
