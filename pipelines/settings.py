"""The one settings object. Read only by entry points (the CLI, benchmarks, test fixtures).

Sources, strongest first: keyword arguments, ``CALLGUARD_*`` environment variables, a TOML file
(``--config FILE`` or ``CALLGUARD_CONFIG``), then the defaults below, which run everything
locally: Kafka on 127.0.0.1:19092 (``docker/kafka/kafka.sh``) and embedded ClickHouse (chDB)
under ``data_dir``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATA_DIR = Path("var")


STREAM_NAMES = ("calls", "audio", "timeout", "citizen", "recording", "abuse")


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected value may be a key or a password; never echo it
    model_config = SettingsConfigDict(
        env_prefix="CALLGUARD_", extra="forbid", hide_input_in_errors=True
    )

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

    # Recordings (issue 5)
    recording_policy_file: Path | None = Field(
        None, description="recording rollout TOML (default: pipelines/config/recording.toml)"
    )
    recordings_dir: Path | None = Field(
        None, description="encrypted recording store folder (default: <data_dir>/recordings)"
    )
    recording_key: str = Field(
        "",
        description="base64 of the 32-byte AES-256-GCM recording key; unset = a key file "
        "generated once under data_dir (development)",
    )
    recording_key_id: str = Field("", description="id written into every file the key encrypts")
    recording_previous_keys: dict[str, str] = Field(
        default_factory=dict,
        description="older keys still needed to read files (key id -> base64), after a rotation",
    )
    recording_idle_timeout_s: float = Field(
        120.0, gt=0, description="a leg with no audio chunk this long is finished and stored"
    )
    recording_access_roles: list[str] = Field(
        default_factory=lambda: ["supervisor", "auditor"],
        description="roles that may decrypt a recording (`callguard recordings get`)",
    )
    recording_role_members: dict[str, list[str]] = Field(
        default_factory=dict,
        description="role -> users allowed to act in it; a role not listed accepts any user",
    )

    # Speech recognition (abuse-detection issue 6; connectors/asr)
    asr_backend: str = Field(
        "faster-whisper",
        pattern="^(faster-whisper|whisperx|fake)$",
        description="speech recognition backend (whisperx needs the whisperx extra)",
    )
    asr_model_path: Path | None = Field(
        None,
        description="CTranslate2 Whisper model folder; unset = the packaged Whisper base "
        "(assembled once under ~/.cache/callguard/models)",
    )
    asr_device: str = Field("cpu", description="cpu | cuda | auto")
    asr_compute_type: str = Field("int8", description="CTranslate2 compute type, e.g. int8")
    asr_beam_size: int = Field(5, ge=1, le=10, description="beam size (1 = greedy, faster)")
    asr_cpu_threads: int = Field(0, ge=0, description="threads per model; 0 = library default")

    # Abuse detection (issue 6): response policy, text model, which streams a worker runs
    asr_legs: list[str] = Field(
        default_factory=lambda: ["caller"],
        description="legs transcribed: the caller's (abuse aimed at staff); add staff for "
        "evidence of both sides at twice the CPU",
    )
    abuse_policy_file: Path | None = Field(
        None, description="abuse response policy per department (default: pipelines/config)"
    )
    abuse_local_terms_file: Path | None = Field(
        None, description="TOML [terms] category = [terms] an office adds on top of the model"
    )
    text_model_dir: Path | None = Field(
        None, description="text classifier model folder (default: the promoted/shipped model)"
    )
    # Learning loop (issue 7): versioned models, `callguard models` / `callguard retrain`
    model_registry_dir: Path | None = Field(
        None, description="model registry folder (default: <data_dir>/models)"
    )
    streams: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["all"],
        description="streams this worker runs: all, or some of calls, audio, timeout, citizen, "
        "recording, abuse (e.g. run abuse detection on its own, bigger workers)",
    )

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

    @field_validator("streams", mode="before")
    @classmethod
    def _split_streams(cls, value: Any) -> Any:
        # CALLGUARD_STREAMS=calls,timeout (comma-separated) as well as a TOML/JSON list
        if isinstance(value, str):
            value = (
                json.loads(value)
                if value.lstrip().startswith("[")
                else [part.strip() for part in value.split(",") if part.strip()]
            )
        known = {"all", *STREAM_NAMES}
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown stream(s) {unknown}; known: {sorted(known)}")
        return value

    def runs(self, stream: str) -> bool:
        """Whether this worker runs ``stream`` (see ``streams``)."""
        return "all" in self.streams or stream in self.streams

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

    @field_validator("recording_key")
    @classmethod
    def _recording_key(cls, value: str) -> str:
        if value:
            import base64
            import binascii

            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("recording_key must be base64") from None
            if len(raw) != 32:
                raise ValueError("recording_key must be 32 bytes (AES-256) once decoded")
        return value

    @property
    def recordings_path(self) -> Path:
        """Where the recording store keeps its files."""
        return (self.recordings_dir or self.data_dir / "recordings").expanduser().resolve()

    @property
    def model_registry_path(self) -> Path:
        """Where the model registry keeps versions and registry.json."""
        return (self.model_registry_dir or self.data_dir / "models").expanduser().resolve()

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
        data["recording_key"] = "***" if self.recording_key else ""
        data["recording_previous_keys"] = {k: "***" for k in self.recording_previous_keys}
        if self.clickhouse_url and "@" in self.clickhouse_url:
            scheme, rest = self.clickhouse_url.split("://", 1)
            data["clickhouse_url"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return data
