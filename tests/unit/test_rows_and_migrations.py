"""Rows for ClickHouse (Arrow) and the migration files."""

from __future__ import annotations

import base64
import hashlib

import pyarrow as pa
import pytest

from connectors.clickhouse.migrations import Migration, MigrationError, discover
from schemas.rows import STORED_TABLES, TIMESTAMP
from tests.samples import SAMPLES, T0

BY_MODEL = {type(r): r for r in SAMPLES.values()}


@pytest.mark.parametrize("table", STORED_TABLES, ids=lambda t: t.name)
def test_to_arrow_has_declared_columns_and_types(table) -> None:  # type: ignore[no-untyped-def]
    record = BY_MODEL[table.model]
    arrow = table.to_arrow([record, record])
    assert arrow.num_rows == 2
    assert arrow.schema.names == table.columns
    for field in arrow.schema:
        if field.name.endswith("_ms") and not field.name.endswith("duration_ms"):
            assert field.type == TIMESTAMP


def test_timestamps_keep_milliseconds() -> None:
    table = next(t for t in STORED_TABLES if t.name == "call_events")
    arrow = table.to_arrow([SAMPLES["call_event"]])
    assert arrow.column("ts_ms").cast(pa.int64()).to_pylist() == [T0]
    assert arrow.column("attrs").to_pylist() == [[("channel", "PJSIP/caller-0001")]]


def test_dead_letters_keep_hash_not_payload() -> None:
    table = next(t for t in STORED_TABLES if t.name == "dead_letters")
    arrow = table.to_arrow([SAMPLES["dead_letter"]])
    assert "payload_b64" not in arrow.schema.names
    assert arrow.column("payload_sha256").to_pylist() == [
        hashlib.sha256(base64.b64decode("e30=")).hexdigest()
    ]


def test_migrations_are_numbered_and_split_into_statements() -> None:
    migrations = discover()
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    assert all(s.startswith("CREATE TABLE") for s in migrations[0].statements())
    created = {
        s.split("(")[0].split()[-1]
        for m in migrations
        for s in m.statements()
        if s.startswith("CREATE TABLE")
    }
    assert {t.name for t in STORED_TABLES} <= created


def test_bad_migration_name_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "V1_init.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match=r"V001__name\.sql"):
        discover(tmp_path)


def test_checksum_changes_with_content() -> None:
    assert Migration(1, "a", "x").checksum != Migration(1, "a", "y").checksum
