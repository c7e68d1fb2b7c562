"""The Stasis application: what happens to a call, step by step, as ARI events arrive.

One :class:`CallSession` per call, keyed by a CallGuard call id (``call-<uuid4 hex>``) that
is written to the first channel as ``CALLGUARD_CALL_ID`` and into its CDR userfield
(:mod:`connectors.asterisk.cdr` explains why the userfield).  Legs are named from the
citizen's point of view whatever the direction: ``caller`` is always the citizen, ``staff``
the employee.

Inbound (dialplan ``Stasis(callguard,inbound,<line>)``)::

    call_started → answer caller → notices (notice_started/finished each) → ringback (MOH
    class of the department) → originate PJSIP/<first staff endpoint> (ringing) → staff
    answers → answered, bridged → per-leg audio capture

Outbound (dialplan ``Stasis(callguard,outbound,<number>)`` from a staff phone)::

    call_started → ring indication to the staff phone → originate the citizen with the
    department's caller id (ringing) → citizen answers (answered) → notices to the citizen →
    answer the staff phone, bridged → audio capture

``originate`` commands (click-to-call) ring the staff phone first, then continue as outbound.

**Audio per leg.**  A snoop channel (``spy=in``: only what that phone sends) and an
externalMedia channel share a small mixing bridge of their own, so Asterisk sends each leg's
voice as separate RTP to a port of :class:`~connectors.asterisk.protocols.AudioCapture`.

**Ending.**  The first leg to hang up (or a ``hangup`` command, or the no-answer timer) ends
the call: the other leg is hung up, helper channels and bridges are torn down, the capture is
closed (final audio chunks) and one ``hangup`` event says why (``hangup_cause`` from the Q.850
code, ``attrs.hungup_by`` = caller | staff | system).

Events are handled one at a time in arrival order and never wait for a later event inside a
handler (the flow is a state machine), so a slow REST call delays but cannot deadlock it.
Every emitted :class:`CallEvent` has a fresh uuid ``event_id`` and ``origin="asterisk"``; its
time is the ARI event's timestamp when there is one.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.asterisk.ari import AriError, PbxUnavailable, event_time_ms
from connectors.asterisk.model import CallFacts, new_call_id, wall_ms
from connectors.asterisk.protocols import (
    AudioCapture,
    DepartmentDirectory,
    DepartmentLike,
    Emitter,
    Pbx,
)
from connectors.asterisk.session import (
    DEFAULT_SOUNDS_DIR,
    LEGS,
    CallSession,
    CommandFailed,
    CommandRejected,
    Leg,
    dial_string,
    media_uri,
)

__all__ = [
    "LEGS",
    "CallFlow",
    "CallSession",
    "CommandFailed",
    "CommandRejected",
    "FlowConfig",
    "dial_string",
    "endpoint_of_channel",
    "media_uri",
    "number_to_endpoint",
]

log = logging.getLogger(__name__)


def number_to_endpoint(number: str) -> str | None:
    """Dialled number → PBX endpoint (development PBX).

    The test PBX has citizen phones ``caller01`` … ``caller16``: a staff phone reaches
    ``callerNN`` by dialling ``0NN``.  Anything else is unallocated.  Production passes its
    own mapping (e.g. a trunk: ``PJSIP/{number}@trunk``) to :class:`CallFlow`.
    """
    digits = number.strip()
    if re.fullmatch(r"0\d\d", digits) and digits != "000":
        return f"PJSIP/caller{digits[1:]}"
    return None


def endpoint_of_channel(name: str) -> str:
    """``PJSIP/staff01-0000002a`` → ``staff01`` (the endpoint a dialplan channel came from)."""
    tech_and_rest = name.split("/", 1)[-1]
    return tech_and_rest.rsplit("-", 1)[0] if "-" in tech_and_rest else tech_and_rest


@dataclass(frozen=True)
class FlowConfig:
    app: str = "callguard"
    rtp_host: str = "127.0.0.1"
    no_answer_timeout_s: float = 30.0
    sounds_dir: str = DEFAULT_SOUNDS_DIR
    #: facts of this many ended calls are kept (CDR enrichment, "call not active" answers)
    ended_kept: int = 10_000


class CallFlow:
    """All sessions of one connector; dispatches ARI events to them."""

    def __init__(
        self,
        pbx: Pbx,
        emitter: Emitter,
        directory: DepartmentDirectory,
        capture: AudioCapture,
        config: FlowConfig | None = None,
        *,
        number_to_endpoint: Callable[[str], str | None] = number_to_endpoint,
        now_ms: Callable[[], int] = wall_ms,
        new_call_id: Callable[[], str] = new_call_id,
    ) -> None:
        self.pbx = pbx
        self.emitter = emitter
        self.directory = directory
        self.capture = capture
        self.config = config or FlowConfig()
        self.number_to_endpoint = number_to_endpoint
        self.now_ms = now_ms
        self.new_call_id = new_call_id
        self.sessions: dict[str, CallSession] = {}
        self._channels: dict[str, tuple[CallSession, str]] = {}
        self._playbacks: dict[str, CallSession] = {}
        self._ended: OrderedDict[str, CallFacts] = OrderedDict()

    # -- registry ---------------------------------------------------------------------------

    def register_channel(self, channel_id: str, session: CallSession, role: str) -> None:
        self._channels[channel_id] = (session, role)

    def register_playback(self, playback_id: str, session: CallSession) -> None:
        self._playbacks[playback_id] = session

    def forget_playback(self, playback_id: str) -> None:
        self._playbacks.pop(playback_id, None)

    def finished(self, session: CallSession) -> None:
        """Forget an ended session, keeping its facts for CDRs and late commands."""
        self.sessions.pop(session.call_id, None)
        for channel_id in [c for c, (s, _) in self._channels.items() if s is session]:
            del self._channels[channel_id]
        for playback_id in [p for p, s in self._playbacks.items() if s is session]:
            del self._playbacks[playback_id]
        self._ended[session.call_id] = session.facts()
        while len(self._ended) > self.config.ended_kept:
            self._ended.popitem(last=False)

    def discard(self, session: CallSession) -> None:
        """Forget a session that never became a call (its PBX request failed); no facts kept."""
        self.sessions.pop(session.call_id, None)
        for channel_id in [c for c, (s, _) in self._channels.items() if s is session]:
            del self._channels[channel_id]

    def facts(self, call_id: str) -> CallFacts | None:
        """Facts of an ended call (None while it runs or when long forgotten)."""
        return self._ended.get(call_id)

    def ended(self, call_id: str) -> bool:
        return call_id in self._ended

    # -- events -----------------------------------------------------------------------------

    async def handle(self, event: Mapping[str, Any]) -> None:
        """Apply one ARI event.  PBX errors are logged; the next event is handled regardless."""
        etype = str(event.get("type", ""))
        ts_ms = event_time_ms(event) or self.now_ms()
        try:
            if etype == "StasisStart":
                await self._stasis_start(event, ts_ms)
            elif etype in ("PlaybackStarted", "PlaybackFinished"):
                playback = event.get("playback") or {}
                playback_id = str(playback.get("id", ""))
                session = self._playbacks.get(playback_id)
                if session is not None:
                    async with session.lock:
                        state = str(playback.get("state", ""))
                        await session.on_playback(etype, playback_id, state, ts_ms)
            else:
                channel = event.get("channel")
                if not isinstance(channel, Mapping):
                    return
                entry = self._channels.get(str(channel.get("id", "")))
                if entry is not None:
                    session, role = entry
                    async with session.lock:
                        await session.on_channel_event(etype, role, event, ts_ms)
        except PbxUnavailable as exc:
            log.error("PBX unavailable while handling %s: %s", etype, exc)
        except AriError as exc:
            log.warning("PBX refused a request while handling %s: %s", etype, exc)

    async def _stasis_start(self, event: Mapping[str, Any], ts_ms: int) -> None:
        channel = event.get("channel") or {}
        channel_id = str(channel.get("id", ""))
        args = [str(a) for a in event.get("args") or []]
        entry = self._channels.get(channel_id)
        if entry is not None:
            session, role = entry
            async with session.lock:
                await session.on_stasis_start(role, channel, ts_ms)
            return
        kind = args[0] if args else ""
        if kind == "inbound" and len(args) >= 2:
            await self._new_inbound(channel, args[1], ts_ms)
        elif kind == "outbound" and len(args) >= 2:
            await self._new_outbound(channel, args[1], ts_ms)
        else:
            # a helper of a call that already ended, or something we did not start
            log.info("channel %s entered Stasis unexpectedly (%s); hanging up", channel_id, kind)
            with contextlib.suppress(AriError):
                await self.pbx.hangup(channel_id)

    def _session(
        self,
        *,
        direction: str,
        department: DepartmentLike | None,
        caller: str,
        callee: str,
        presented: str,
        first_role: str,
        call_id: str | None = None,
    ) -> CallSession:
        session = CallSession(
            flow=self,
            call_id=call_id or self.new_call_id(),
            direction=direction,
            department=department,
            caller=caller,
            callee=callee,
            presented_caller_id=presented,
            first_role=first_role,
            notices=tuple(department.notices) if department else (),
            ringback_class=department.ringback if department else "default",
        )
        self.sessions[session.call_id] = session
        return session

    async def _new_inbound(self, channel: Mapping[str, Any], line: str, ts_ms: int) -> None:
        caller_id = channel.get("caller") or {}
        session = self._session(
            direction="inbound",
            department=self.directory.by_line(line),
            caller=str(caller_id.get("number", "")),
            callee=line,
            presented="",
            first_role="caller",
        )
        channel_id = str(channel.get("id", ""))
        session.legs["caller"] = Leg(
            "caller", channel_id, answered=channel.get("state") == "Up", in_stasis=True
        )
        self.register_channel(channel_id, session, "caller")
        log.info("call %s: inbound on channel %s", session.call_id, channel_id)
        async with session.lock:
            await session.start_inbound(ts_ms, line)

    async def _new_outbound(self, channel: Mapping[str, Any], number: str, ts_ms: int) -> None:
        endpoint = endpoint_of_channel(str(channel.get("name", "")))
        department = self.directory.by_staff_endpoint(endpoint)
        office = department.office_number if department else ""
        session = self._session(
            direction="outbound",
            department=department,
            caller=office,
            callee=number,
            presented=office,
            first_role="staff",
        )
        channel_id = str(channel.get("id", ""))
        session.legs["staff"] = Leg(
            "staff", channel_id, endpoint, answered=channel.get("state") == "Up", in_stasis=True
        )
        self.register_channel(channel_id, session, "staff")
        log.info("call %s: outbound from %s on channel %s", session.call_id, endpoint, channel_id)
        async with session.lock:
            await session.start_outbound(ts_ms, number)

    async def originate(
        self,
        call_id: str,
        *,
        endpoint: str,
        caller_id_number: str,
        caller_id_name: str,
        staff_endpoint: str = "",
        department: str = "",
    ) -> CallSession:
        """Click-to-call for an ``originate`` command (raises CommandRejected/CommandFailed)."""
        if call_id in self.sessions or call_id in self._ended:
            raise CommandFailed("call id already in use")
        citizen = endpoint if "/" in endpoint else self.number_to_endpoint(endpoint)
        if not citizen:
            raise CommandRejected("endpoint is neither PJSIP/<name> nor a reachable number")
        dept = self._department_for(department, caller_id_number, staff_endpoint)
        staff = staff_endpoint or (dept.staff_endpoints[0] if dept and dept.staff_endpoints else "")
        if not staff:
            raise CommandRejected("no staff endpoint: give staff_endpoint or a department")
        number = caller_id_number or (dept.office_number if dept else "")
        name = caller_id_name or (dept.name if dept else "")
        session = self._session(
            direction="outbound",
            department=dept,
            caller=number,
            callee=endpoint,
            presented=number,
            first_role="staff",
            call_id=call_id,
        )
        session.citizen_endpoint = citizen
        session.citizen_caller_id = f'"{name}" <{number}>' if name else number
        async with session.lock:
            await session.start_click_to_call(self.now_ms(), staff)
        return session

    def _department_for(
        self, code: str, office_number: str, staff_endpoint: str
    ) -> DepartmentLike | None:
        if code:
            dept = self.directory.departments.get(code)
            if dept is None:
                raise CommandRejected("unknown department")
            return dept
        if staff_endpoint:
            dept = self.directory.by_staff_endpoint(staff_endpoint)
            if dept is not None:
                return dept
        return next(
            (d for d in self.directory.departments.values() if d.office_number == office_number),
            None,
        )

    # -- connection housekeeping --------------------------------------------------------------

    async def reconcile(self, live_channel_ids: Iterable[str]) -> int:
        """After an ARI reconnect: end calls whose channels vanished meanwhile; return count."""
        live = set(live_channel_ids)
        ended = 0
        for session in list(self.sessions.values()):
            async with session.lock:
                if not session.active:
                    continue
                for role, leg in session.legs.items():
                    if leg.channel_id not in live and not leg.gone:
                        leg.gone = True
                        await session.end(
                            self.now_ms(), "normal", role, attrs={"reconciled": "true"}
                        )
                        ended += 1
                        break
        return ended

    async def shutdown(self) -> None:
        """Connector stopping: close audio (final chunks) but leave the calls up."""
        for session in list(self.sessions.values()):
            session.cancel_timer()
            for role in list(session.taps):
                try:
                    await self.capture.close(session.call_id, role)
                except (OSError, RuntimeError) as exc:
                    log.warning("call %s: closing audio failed: %s", session.call_id, exc)
            session.taps.clear()
