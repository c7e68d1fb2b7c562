"""Topic declarations and the settings object."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.kafka.topics import TABLES, TopicCatalog
from pipelines.settings import Settings
from schemas.rows import STORED_TABLES


def test_topic_names_are_unique_and_prefixed() -> None:
    catalog = TopicCatalog(prefix="t-42.", partitions=6)
    names = [s.name for s in catalog.specs]
    assert len(names) == len(set(names))
    assert all(n.startswith("t-42.") for n in names)
    assert all(s.partitions == 6 for s in catalog.specs)
    assert catalog.call_events == "t-42.pbx.call-events"


def test_changelogs_are_compacted_and_named_like_faust() -> None:
    catalog = TopicCatalog(prefix="p.", app_id="cg")
    for table in TABLES:
        spec = next(s for s in catalog.specs if s.key == f"changelog:{table}")
        assert spec.name == f"p.cg-{table}-changelog"
        assert spec.config == {"cleanup.policy": "compact"}


def test_retention_is_bounded_for_personal_data() -> None:
    catalog = TopicCatalog()
    audio = next(s for s in catalog.specs if s.key == "audio")
    assert int(audio.config["retention.ms"]) <= 24 * 3600 * 1000


def test_every_stored_table_reads_a_declared_topic() -> None:
    catalog = TopicCatalog()
    for table in STORED_TABLES:
        assert catalog.name(table.topic_key)
    with pytest.raises(AttributeError):
        _ = catalog.no_such_topic


def test_settings_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "callguard.toml"
    config.write_text('partitions = 9\ntopic_prefix = "from-file."\n')
    monkeypatch.setenv("CALLGUARD_PARTITIONS", "7")
    settings = Settings(config=config)
    assert settings.partitions == 7  # environment beats the file
    assert settings.topic_prefix == "from-file."
    assert Settings(config=config, partitions=3).partitions == 3  # arguments beat both


def test_settings_defaults_are_local_and_embedded() -> None:
    settings = Settings()
    assert settings.embedded_clickhouse
    assert settings.clickhouse_dsn.startswith("chdb:///")
    assert settings.kafka_bootstrap.startswith("127.0.0.1:")


def test_server_url_password_is_masked() -> None:
    settings = Settings(clickhouse_url="http://cg:s3cret@db:8123/callguard")
    assert not settings.embedded_clickhouse
    assert "s3cret" not in str(settings.public_dict())


def test_unknown_settings_and_bad_values_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("partitons = 3\n")
    with pytest.raises(ValueError, match="partitons"):
        Settings(config=config)
    with pytest.raises(ValueError):
        Settings(processing_guarantee="sometimes")
    with pytest.raises(FileNotFoundError):
        Settings(config=tmp_path / "missing.toml")
