"""The one settings object. Read only by entry points (the CLI, benchmarks, test fixtures).

Sources, strongest first: keyword arguments, ``CALLGUARD_*`` environment variables, a TOML file
(``--config FILE`` or ``CALLGUARD_CONFIG``), then the defaults below, which run everything
locally: Kafka on 127.0.0.1:19092 (``docker/kafka/kafka.sh``) and embedded ClickHouse (chDB)
under ``data_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLGUARD_", extra="forbid")

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers")
    topic_prefix: str = Field("", description="prefix for every topic name (tests, tenants)")
    partitions: int = Field(4, ge=1, description="partitions of call-keyed topics")
    replication_factor: int = Field(1, ge=1)
    app_id: str = Field("callguard", description="faust application id / consumer group")
    processing_guarantee: str = Field("exactly_once", pattern="^(exactly_once|at_least_once)$")

    # ClickHouse
    clickhouse_url: str | None = Field(
        None, description="ClickHouse server, e.g. http://user:pw@host:8123/callguard; unset = chDB"
    )
    clickhouse_database: str = "callguard"
    data_dir: Path = Field(DEFAULT_DATA_DIR, description="local state: chDB, worker tables, logs")

    # Sink
    sink_batch_rows: int = Field(5000, ge=1, description="rows per ClickHouse insert at most")
    sink_flush_seconds: float = Field(1.0, gt=0, description="insert at least this often")
    query_port: int = Field(28124, description="loopback port of the sink's read-only query API")

    # Worker
    session_timeout_s: float = Field(
        60.0, ge=6, description="a worker silent this long loses its partitions (crash takeover)"
    )
    worker_web_port: int = Field(26066, description="faust worker web port (health, metrics)")
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$")

    departments_file: Path | None = Field(
        None, description="department directory TOML (default: pipelines/config/departments.toml)"
    )
    timeout_policy_file: Path | None = Field(
        None, description="timeout rule policy TOML (default: pipelines/config/timeout.toml)"
    )
    ringback_calendar_file: Path | None = Field(
        None, description="department calendars (default: pipelines/config/calendar.toml)"
    )
    callerid_config_file: Path | None = Field(
        None, description="caller-ID branding TOML (default: pipelines/config/callerid.toml)"
    )
    branded_call_url: str | None = Field(
        None, description="carrier branded-call endpoint (HTTP POST); unset = not sent"
    )
    alimtalk_url: str | None = Field(
        None, description="KakaoTalk AlimTalk relay endpoint (HTTP POST); unset = not sent"
    )
    notify_token: str = Field("", description="bearer token for both notification endpoints")

    # Asterisk (development defaults match docker/asterisk/conf on loopback)
    asterisk_ari_url: str = "http://127.0.0.1:28088"
    asterisk_ari_user: str = "callguard"
    asterisk_ari_password: str = "callguard-ari"
    asterisk_app: str = Field("callguard", description="ARI Stasis application name")
    asterisk_ami_host: str = "127.0.0.1"
    asterisk_ami_port: int = 25038
    asterisk_ami_user: str = "callguard"
    asterisk_ami_password: str = "callguard-ami"
    rtp_host: str = Field("127.0.0.1", description="where Asterisk sends externalMedia RTP")
    rtp_port_min: int = 32000
    rtp_port_max: int = 32999
    audio_chunk_ms: int = Field(200, ge=20, le=5000, description="audio chunk length")
    asterisk_no_answer_timeout_s: float = Field(30.0, gt=0, description="staff ring timeout")
    asterisk_sounds_dir: str = Field(
        "/opt/pbx/sounds/callguard", description="announcement folder as the PBX sees it"
    )
    asterisk_command_max_age_s: float = Field(
        600.0, gt=0, description="older PBX commands fail as expired instead of acting late"
    )
    asterisk_cdr_timezone: str | None = Field(
        None, description="IANA zone of the PBX's CDR times (unset: this host's zone)"
    )

    config: Path | None = Field(None, description="TOML file with any of these settings")

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # child processes (worker, sink) may run elsewhere; an absolute path means one place
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = init_settings().get("config") or os.environ.get("CALLGUARD_CONFIG")
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"config file not found: {path}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "chdb"

    @property
    def clickhouse_dsn(self) -> str:
        """What the ClickHouse connector is opened with: the server URL or a chDB DSN."""
        return self.clickhouse_url or f"chdb://{self.chdb_path}"

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse_url is None

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to print: passwords in URLs are masked."""
        data = self.model_dump(mode="json")
        for key in ("asterisk_ari_password", "asterisk_ami_password", "notify_token"):
            data[key] = "***"
        if self.clickhouse_url and "@" in self.clickhouse_url:
            scheme, rest = self.clickhouse_url.split("://", 1)
            data["clickhouse_url"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return data
