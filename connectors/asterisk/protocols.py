"""The narrow interfaces the call flow and the command applier are written against.

:class:`~connectors.asterisk.ari.AriClient` implements :class:`Pbx`, the Kafka output of
:mod:`~connectors.asterisk.service` implements :class:`Emitter`,
:class:`~connectors.asterisk.rtp.RtpCapture` implements :class:`AudioCapture`, and
``pipelines.departments.Directory`` satisfies :class:`DepartmentDirectory` — so the connector
needs nothing from ``pipelines`` and unit tests pass fakes for all four.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from schemas.records import AudioChunk, CallEvent, Cdr, CommandResult

Record = CallEvent | AudioChunk | CommandResult | Cdr


class Pbx(Protocol):
    """The ARI operations CallGuard uses.  Errors: ``AriError`` (refused), ``PbxUnavailable``."""

    async def answer(self, channel_id: str) -> None: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...

    async def ring(self, channel_id: str) -> None: ...

    async def ring_stop(self, channel_id: str) -> None: ...

    async def start_moh(self, channel_id: str, moh_class: str) -> None: ...

    async def stop_moh(self, channel_id: str) -> None: ...

    async def play_on_channel(self, channel_id: str, media: str, playback_id: str) -> None: ...

    async def play_on_bridge(self, bridge_id: str, media: str, playback_id: str) -> None: ...

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> None: ...

    async def destroy_bridge(self, bridge_id: str) -> None: ...

    async def add_channels(self, bridge_id: str, channel_ids: Sequence[str]) -> None: ...

    async def record_bridge(
        self, bridge_id: str, name: str, fmt: str = "wav", if_exists: str = "overwrite"
    ) -> None: ...

    async def stop_recording(self, name: str) -> None: ...

    async def originate(
        self,
        *,
        endpoint: str,
        app: str,
        app_args: str,
        caller_id: str,
        channel_id: str,
        variables: Mapping[str, str] | None = None,
        timeout_s: int = 30,
    ) -> dict[str, Any]: ...

    async def external_media(
        self, *, app: str, external_host: str, fmt: str, channel_id: str
    ) -> dict[str, Any]: ...

    async def snoop(
        self, channel_id: str, *, snoop_id: str, app: str, app_args: str, spy: str = "in"
    ) -> dict[str, Any]: ...

    async def set_variable(self, channel_id: str, name: str, value: str) -> None: ...


class Emitter(Protocol):
    """Where records go (Kafka in production); must not block."""

    def emit(self, record: Record) -> None: ...


class AudioCapture(Protocol):
    """Receives one leg's RTP; ``close`` flushes the leg's final chunk through the emitter."""

    async def open(self, call_id: str, leg: str) -> int:
        """Start receiving; return the UDP port Asterisk must send to."""
        ...

    async def close(self, call_id: str, leg: str) -> None: ...


class DepartmentLike(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def line(self) -> str: ...

    @property
    def office_number(self) -> str: ...

    @property
    def staff_endpoints(self) -> tuple[str, ...]: ...

    @property
    def notices(self) -> tuple[str, ...]: ...

    @property
    def ringback(self) -> str: ...


class DepartmentDirectory(Protocol):
    @property
    def departments(self) -> Mapping[str, DepartmentLike]: ...

    def by_line(self, line: str) -> DepartmentLike | None: ...

    def by_staff_endpoint(self, endpoint: str) -> DepartmentLike | None: ...
