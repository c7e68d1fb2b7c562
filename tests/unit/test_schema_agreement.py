"""The three descriptions of the wire agree: faust Records, JSON Schema files, ClickHouse DDL."""

from __future__ import annotations

import re

import pytest

from connectors.clickhouse.migrations import discover
from schemas.json_schema import build_schema, load, stale_files
from schemas.records import MODELS
from schemas.rows import STORED_TABLES, StoredTable, is_timestamp
from schemas.vocabulary import ENUMS

JSON_TYPE = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict[str, str]: "object",
    dict[str, float]: "object",
}
CH_TYPES = {
    str: {"String", "LowCardinality(String)"},
    int: {"UInt8", "UInt32", "UInt64", "Int32", "Int64"},
    float: {"Float64", "Float32"},
    bool: {"Bool", "UInt8"},
    dict[str, str]: {"Map(String, String)"},
    dict[str, float]: {"Map(String, Float64)"},
}


def ddl_columns() -> dict[str, dict[str, str]]:
    """table → column → type, parsed from the migration files."""
    tables: dict[str, dict[str, str]] = {}
    sql = "\n".join(m.sql for m in discover())
    for match in re.finditer(r"CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*?)\n\)", sql, re.S):
        columns = {}
        for line in match[2].splitlines():
            line = line.strip().rstrip(",")
            if not line or line.startswith("--"):
                continue
            name, type_ = line.split(" ", 1)
            columns[name] = type_.split(" DEFAULT ")[0]
        tables[match[1]] = columns
    # later migrations add columns: ALTER TABLE t ADD COLUMN IF NOT EXISTS name type AFTER col
    alter = r"ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+) (.+?) AFTER (\w+)\s*;"
    for match in re.finditer(alter, sql):
        table, name, type_, after = match.groups()
        items = list(tables[table].items())
        at = [column for column, _ in items].index(after) + 1
        tables[table] = dict([*items[:at], (name, type_), *items[at:]])
    return tables


def test_json_schema_files_are_up_to_date() -> None:
    assert stale_files() == [], "run `callguard schemas export` and commit the files"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_json_schema_matches_record(name: str) -> None:
    model = MODELS[name]
    schema = load(name)
    fields = model._options.fields
    assert list(schema["properties"]) == list(fields)
    for field, annotation in fields.items():
        assert schema["properties"][field]["type"] == JSON_TYPE[annotation], field
    required = [f for f in fields if f not in model._options.defaults]
    assert schema["required"] == required
    for field, values in ENUMS.get(name, {}).items():
        assert schema["properties"][field]["enum"] == list(values)
    assert schema == build_schema(name, model)


@pytest.mark.parametrize("table", STORED_TABLES, ids=lambda t: t.name)
def test_clickhouse_table_matches_record(table: StoredTable) -> None:
    ddl = ddl_columns()[table.name]
    fields = table.model._options.fields
    expected = [*table.columns, "ingested_at"]
    assert list(ddl) == expected, f"{table.name}: DDL columns differ from the record"
    for field in table.columns:
        if field in table.derived:
            continue
        if is_timestamp(field):
            assert ddl[field] == "DateTime64(3, 'UTC')", field
        else:
            assert ddl[field] in CH_TYPES[fields[field]], f"{table.name}.{field}: {ddl[field]}"


def test_every_stored_model_has_a_table_and_every_table_is_declared() -> None:
    declared = {t.name for t in STORED_TABLES}
    assert set(ddl_columns()) == declared
    assert {t.model for t in STORED_TABLES} <= set(MODELS.values())
