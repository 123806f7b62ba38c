"""The Parquet writer, read back by DuckDB (what `make sql` uses; Athena reads the same format)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from audience.domain.parquet import Column, write_table

COLUMNS = [Column("id", "string"), Column("n", "int"), Column("x", "float"), Column("b", "bool"),
           Column("d", "date"), Column("t", "timestamp")]  # fmt: skip


def test_every_kind_and_nulls_read_back_as_written(tmp_path: Path) -> None:
    rows = [
        ("é-1", 1, 1.5, True, date(2026, 1, 2), datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
        (None, None, None, None, None, None),
        ("c", -(2**40), -2.25, False, date(1969, 12, 31), datetime(1999, 1, 1, tzinfo=UTC)),
    ] * 11  # bit-packed booleans over several bytes, runs of definition levels
    path = tmp_path / "t.parquet"
    path.write_bytes(write_table(COLUMNS, rows))

    read = duckdb.sql(f"SELECT * FROM '{path}'").fetchall()
    assert [tuple(None if v is None else v for v in r[:5]) for r in read] == [r[:5] for r in rows]
    assert [r[5] for r in read] == [None if r[5] is None else r[5].replace(tzinfo=None) for r in rows]
    types = duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()
    assert [t[1] for t in types] == ["VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP"]


def test_an_empty_table_is_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    path.write_bytes(write_table(COLUMNS, []))
    assert duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall() == [(0,)]
