"""One call's state machine (:class:`CallSession`) and the small types it is made of.

The session is driven by :class:`~connectors.asterisk.callflow.CallFlow`, which routes ARI
events and commands to it with the session's lock held; the flow's module doc describes the
call flows.  Everything the session asks of the world goes through the flow: the
:class:`~connectors.asterisk.protocols.Pbx`, the emitter and the audio capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.asterisk.ari import AriError, PbxUnavailable
from connectors.asterisk.cdr import CdrTag
from connectors.asterisk.model import (
    ORIGIN,
    CallFacts,
    ari_reason,
    disposition_for,
    hangup_cause,
    new_event_id,
)
from connectors.asterisk.protocols import DepartmentLike, Pbx
from schemas.records import CallEvent

if TYPE_CHECKING:
    from connectors.asterisk.callflow import CallFlow

log = logging.getLogger(__name__)

LEGS = ("caller", "staff")
CALL_ID_VARIABLE = "CALLGUARD_CALL_ID"
USERFIELD_VARIABLE = "CDR(userfield)"
DEFAULT_SOUNDS_DIR = "/opt/pbx/sounds/callguard"
MEDIA_SCHEMES = ("sound", "recording", "tone", "digits", "number", "characters")
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_DTMF = re.compile(r"^[0-9A-D#*]$")

# phases of a call
STARTING, STAFF_RINGING, NOTICES, RINGING, BRIDGED, ENDED = (
    "starting",
    "staff_ringing",
    "notices",
    "ringing",
    "bridged",
    "ended",
)


class CommandFailed(Exception):
    """A command that cannot be carried out on this call now (result status ``failed``)."""


class CommandRejected(ValueError):
    """A command whose arguments are unusable (result status ``rejected``)."""


def dial_string(endpoint: str) -> str:
    """``staff01`` → ``PJSIP/staff01``; already technology-qualified strings pass through."""
    return endpoint if "/" in endpoint else f"PJSIP/{endpoint}"


def media_uri(media: str, sounds_dir: str = DEFAULT_SOUNDS_DIR) -> str:
    """A CallGuard sound name (``consent-notice``) or an ARI media URI → ARI media URI.

    Names are restricted to letters, digits, ``-`` and ``_`` so a command cannot reach files
    outside the sounds directory; URIs must use one of ARI's media schemes.
    """
    media = media.strip()
    if ":" in media:
        scheme, _, rest = media.partition(":")
        if scheme not in MEDIA_SCHEMES or not rest or ".." in rest:
            raise CommandRejected(f"unsupported media URI scheme {scheme!r}")
        return media
    if not _NAME.match(media):
        raise CommandRejected("media must be a sound name (letters, digits, - and _)")
    return f"sound:{sounds_dir.rstrip('/')}/{media}"


@dataclass
class Leg:
    role: str
    channel_id: str
    endpoint: str = ""
    answered: bool = False
    in_stasis: bool = False
    gone: bool = False


@dataclass
class Tap:
    """One leg's audio capture: snoop + externalMedia in their own bridge."""

    leg: str
    bridge_id: str
    snoop_id: str
    media_id: str
    port: int


@dataclass
class Playback:
    playback_id: str
    kind: str  # notice | command
    media: str
    target: str
    command_id: str = ""
    done: asyncio.Future[str] | None = None


@dataclass(eq=False)  # identity semantics: sessions are looked up, never compared
class CallSession:
    """One call's state; its methods run with ``lock`` held (the flow and applier take it)."""

    flow: CallFlow
    call_id: str
    direction: str
    department: DepartmentLike | None
    caller: str
    callee: str
    presented_caller_id: str
    first_role: str  # the leg that entered via the dialplan / was dialled first (CDR Party A)
    dialled_role: str = ""
    present_role: str = ""
    phase: str = STARTING
    legs: dict[str, Leg] = field(default_factory=dict)
    taps: dict[str, Tap] = field(default_factory=dict)
    playbacks: dict[str, Playback] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    notice_index: int = 0
    ringback_class: str = "default"
    ringback_tone: bool = False
    ringback: str = ""  # "" | moh | ring: what is playing now
    citizen_endpoint: str = ""
    citizen_caller_id: str = ""
    bridge_id: str = ""
    recording: str = ""
    started_ms: int = 0
    answered_ms: int = 0
    ended_ms: int = 0
    hangup_cause: str = ""
    hungup_by: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _timer: asyncio.Task[None] | None = None

    # -- helpers ----------------------------------------------------------------------------

    @property
    def department_code(self) -> str:
        return self.department.code if self.department else ""

    @property
    def active(self) -> bool:
        return self.phase != ENDED

    @property
    def pbx(self) -> Pbx:
        return self.flow.pbx

    def event(
        self,
        type_: str,
        ts_ms: int,
        *,
        leg: str = "",
        digit: str = "",
        cause: str = "",
        attrs: Mapping[str, str] | None = None,
    ) -> None:
        self.flow.emitter.emit(
            CallEvent(
                event_id=new_event_id(),
                call_id=self.call_id,
                type=type_,
                ts_ms=ts_ms,
                direction=self.direction,
                department=self.department_code,
                caller=self.caller,
                callee=self.callee,
                presented_caller_id=self.presented_caller_id,
                leg=leg,
                digit=digit,
                hangup_cause=cause,
                attrs=dict(attrs or {}),
                origin=ORIGIN,
            )
        )

    def tag(self) -> CdrTag:
        return CdrTag(
            call_id=self.call_id,
            direction=self.direction,
            department=self.department_code,
            caller=self.caller,
            callee=self.callee,
            presented_caller_id=self.presented_caller_id,
        )

    def variables(self) -> dict[str, str]:
        """Channel variables for a channel this session originates."""
        return {CALL_ID_VARIABLE: self.call_id}

    async def _quietly(self, action: Awaitable[Any], what: str) -> None:
        """Run a teardown step; a channel that is already gone is not an error."""
        try:
            await action
        except AriError as exc:
            log.debug("call %s: %s: %s", self.call_id, what, exc)
        except PbxUnavailable as exc:
            log.warning("call %s: %s: PBX unavailable (%s)", self.call_id, what, exc)

    def _start_timer(self) -> None:
        self.cancel_timer()
        self._timer = asyncio.create_task(
            self._no_answer_after(self.flow.config.no_answer_timeout_s)
        )

    def cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _no_answer_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        async with self.lock:
            if self.phase in (RINGING, STAFF_RINGING):
                log.info("call %s: no answer after %.0f s", self.call_id, delay_s)
                await self.end(self.flow.now_ms(), "no_answer", "system")

    # -- setup --------------------------------------------------------------------------------

    async def _tag_first_leg(self) -> None:
        """Call id and CDR tag on the dialplan channel (see connectors.asterisk.cdr)."""
        channel_id = self.legs[self.first_role].channel_id
        await self.pbx.set_variable(channel_id, CALL_ID_VARIABLE, self.call_id)
        await self.pbx.set_variable(channel_id, USERFIELD_VARIABLE, self.tag().encode())

    async def start_inbound(self, ts_ms: int, line: str) -> None:
        self.started_ms = ts_ms
        try:
            await self._tag_first_leg()
        except AriError as exc:
            log.warning("call %s: could not tag the caller channel: %s", self.call_id, exc)
        self.event("call_started", ts_ms, attrs={"line": line})
        if self.department is None:
            log.warning("call %s: no department answers line %s; hanging up", self.call_id, line)
            await self.end(ts_ms, "unallocated", "system")
            return
        self.dialled_role, self.present_role = "staff", "caller"
        try:
            await self.pbx.answer(self.legs["caller"].channel_id)
        except AriError as exc:
            log.warning("call %s: answer failed: %s", self.call_id, exc)
            await self.end(ts_ms, "failure", "system")
            return
        self.legs["caller"].answered = True
        self.phase = NOTICES
        await self._next_notice(ts_ms)

    async def start_outbound(self, ts_ms: int, number: str) -> None:
        self.started_ms = ts_ms
        try:
            await self._tag_first_leg()
        except AriError as exc:
            log.warning("call %s: could not tag the staff channel: %s", self.call_id, exc)
        self.event("call_started", ts_ms)
        if self.department is None:
            log.warning("call %s: staff endpoint has no department; hanging up", self.call_id)
            await self.end(ts_ms, "unallocated", "system")
            return
        endpoint = self.flow.number_to_endpoint(number)
        if endpoint is None:
            log.info("call %s: dialled number is not reachable; hanging up", self.call_id)
            await self.end(ts_ms, "unallocated", "system")
            return
        self.citizen_endpoint = endpoint
        self.citizen_caller_id = f'"{self.department.name}" <{self.department.office_number}>'
        await self._ring_citizen(ts_ms)

    async def start_click_to_call(self, ts_ms: int, staff_endpoint: str) -> None:
        """``originate`` command: ring the staff phone, then the citizen.

        The PBX is asked first and events follow only once it agreed, so a refused or
        unreachable PBX leaves no trace: the session is discarded and the error propagates
        (CommandFailed, or PbxUnavailable for the command to be retried).
        """
        self.started_ms = ts_ms
        self.phase = STAFF_RINGING
        self.dialled_role = "staff"
        staff_id = f"{self.call_id}-staff"
        self.legs["staff"] = Leg("staff", staff_id, staff_endpoint)
        self.flow.register_channel(staff_id, self, "staff")
        variables = {**self.variables(), USERFIELD_VARIABLE: self.tag().encode()}
        try:
            await self.pbx.originate(
                endpoint=dial_string(staff_endpoint),
                app=self.flow.config.app,
                app_args=f"staff,{self.call_id}",
                caller_id=self.callee,
                channel_id=staff_id,
                variables=variables,
                timeout_s=self._dial_timeout_s(),
            )
        except AriError as exc:
            self.flow.discard(self)
            raise CommandFailed(f"PBX refused to ring the staff phone ({exc.status})") from exc
        except PbxUnavailable:
            self.flow.discard(self)
            raise
        self.event("call_started", ts_ms, attrs={"originated_by": "command"})
        self.event("ringing", ts_ms, leg="staff", attrs={"endpoint": staff_endpoint})
        self._start_timer()

    def _dial_timeout_s(self) -> int:
        # Asterisk's own dial timeout backs up ours; ours fires first and decides the cause
        return int(self.flow.config.no_answer_timeout_s) + 5

    async def _next_notice(self, ts_ms: int) -> None:
        """Play the next notice to the citizen, or move on when none is left."""
        citizen = self.legs["caller"].channel_id
        while self.notice_index < len(self.notices):
            index = self.notice_index
            name = self.notices[index]
            self.notice_index += 1
            playback_id = f"{self.call_id}-notice-{index}"
            try:
                uri = media_uri(name, self.flow.config.sounds_dir)
            except CommandRejected:
                log.warning("call %s: notice %d has an invalid name; skipped", self.call_id, index)
                continue
            self.playbacks[playback_id] = Playback(playback_id, "notice", name, "caller")
            self.flow.register_playback(playback_id, self)
            try:
                await self.pbx.play_on_channel(citizen, uri, playback_id)
                return  # PlaybackFinished continues the flow
            except AriError as exc:
                log.warning("call %s: notice %s failed to start: %s", self.call_id, name, exc)
                self.playbacks.pop(playback_id, None)
                self.flow.forget_playback(playback_id)
        await self._after_notices(ts_ms)

    async def _after_notices(self, ts_ms: int) -> None:
        if self.direction == "inbound" and "staff" not in self.legs:
            await self._ring_staff(ts_ms)
        else:
            await self._connect(ts_ms)

    async def _ring_staff(self, ts_ms: int) -> None:
        assert self.department is not None
        if not self.department.staff_endpoints:
            log.warning("call %s: department has no staff endpoint", self.call_id)
            await self.end(ts_ms, "unallocated", "system")
            return
        endpoint = self.department.staff_endpoints[0]
        self.phase = RINGING
        await self._start_ringback()
        await self._dial("staff", "staff", endpoint, dial_string(endpoint), self.caller, ts_ms)

    async def _ring_citizen(self, ts_ms: int) -> None:
        self.phase = RINGING
        self.dialled_role, self.present_role = "caller", "staff"
        await self._start_ringback()
        endpoint = self.citizen_endpoint
        await self._dial("caller", "citizen", endpoint, endpoint, self.citizen_caller_id, ts_ms)

    async def _dial(
        self, leg: str, role: str, endpoint: str, dial: str, caller_id: str, ts_ms: int
    ) -> None:
        """Originate one leg into the app (channel ``<call id>-<role>``), then report ringing;
        a refused originate ends the call as a failure."""
        channel_id = f"{self.call_id}-{role}"
        self.legs[leg] = Leg(leg, channel_id, endpoint)
        self.flow.register_channel(channel_id, self, leg)
        try:
            await self.pbx.originate(
                endpoint=dial,
                app=self.flow.config.app,
                app_args=f"{role},{self.call_id}",
                caller_id=caller_id,
                channel_id=channel_id,
                variables=self.variables(),
                timeout_s=self._dial_timeout_s(),
            )
        except AriError as exc:
            log.warning("call %s: %s originate refused: %s", self.call_id, role, exc)
            self.legs[leg].gone = True
            await self.end(ts_ms, "failure", "system")
            return
        self.event("ringing", ts_ms, leg=leg, attrs={"endpoint": endpoint})
        self._start_timer()

    # -- ringback -----------------------------------------------------------------------------

    async def _start_ringback(self) -> None:
        """Music on hold (department class) to the waiting party, or a ringing tone.

        A party whose channel is not answered yet (a staff phone dialling out) gets a ringing
        indication: its phone plays the ringback itself.
        """
        leg = self.legs.get(self.present_role)
        if leg is None or leg.gone:
            return
        try:
            if self.ringback_tone or not leg.answered:
                await self.pbx.ring(leg.channel_id)
                self.ringback = "ring"
            else:
                await self.pbx.start_moh(leg.channel_id, self.ringback_class)
                self.ringback = "moh"
        except AriError as exc:
            log.warning("call %s: ringback failed: %s", self.call_id, exc)

    async def _stop_ringback(self) -> None:
        leg = self.legs.get(self.present_role)
        playing, self.ringback = self.ringback, ""
        if leg is None or leg.gone or not playing:
            return
        if playing == "moh":
            await self._quietly(self.pbx.stop_moh(leg.channel_id), "stop MOH")
        else:
            await self._quietly(self.pbx.ring_stop(leg.channel_id), "stop ringing")

    # -- connecting ---------------------------------------------------------------------------

    async def on_stasis_start(self, role: str, channel: Mapping[str, Any], ts_ms: int) -> None:
        channel_id = str(channel.get("id", ""))
        if not self.active:
            await self._quietly(self.pbx.hangup(channel_id), "hang up a late channel")
            return
        if ":" in role:  # snoop:<leg> or media:<leg> joins its tap bridge
            tap = self.taps.get(role.split(":", 1)[1])
            if tap is not None:
                try:
                    await self.pbx.add_channels(tap.bridge_id, [channel_id])
                except AriError as exc:
                    log.warning("call %s: audio tap %s not bridged: %s", self.call_id, role, exc)
            return
        leg = self.legs.get(role)
        if leg is None:
            return
        leg.in_stasis = True
        leg.answered = leg.answered or channel.get("state") == "Up"
        if leg.answered:
            await self._on_dialled_answered(role, ts_ms)

    async def on_state_change(self, role: str, state: str, ts_ms: int) -> None:
        leg = self.legs.get(role)
        if leg is None or state != "Up" or leg.answered:
            return
        leg.answered = True
        if leg.in_stasis:
            await self._on_dialled_answered(role, ts_ms)

    async def _on_dialled_answered(self, role: str, ts_ms: int) -> None:
        if role != self.dialled_role:
            return
        if self.phase == STAFF_RINGING:
            self.cancel_timer()
            await self._ring_citizen(ts_ms)
            return
        if self.phase != RINGING:
            return
        self.cancel_timer()
        self.event("answered", ts_ms, leg=role)
        if role == "caller" and self.notice_index < len(self.notices):
            self.phase = NOTICES
            await self._next_notice(ts_ms)
        else:
            await self._connect(ts_ms)

    async def _connect(self, ts_ms: int) -> None:
        """Both parties present: stop ringback, answer, bridge, start capturing audio."""
        await self._stop_ringback()
        caller, staff = self.legs["caller"], self.legs["staff"]
        bridge_id = f"{self.call_id}-bridge"
        try:
            for leg in (caller, staff):
                if not leg.answered:
                    await self.pbx.answer(leg.channel_id)
                    leg.answered = True
            await self.pbx.create_bridge(bridge_id, "mixing")
            self.bridge_id = bridge_id
            await self.pbx.add_channels(bridge_id, [caller.channel_id, staff.channel_id])
        except AriError as exc:
            log.warning("call %s: bridging failed: %s", self.call_id, exc)
            await self.end(ts_ms, "failure", "system")
            return
        self.phase = BRIDGED
        self.answered_ms = ts_ms
        self.event("bridged", ts_ms)
        await self._start_capture()

    async def _start_capture(self) -> None:
        config = self.flow.config
        for role in LEGS:
            leg = self.legs[role]
            try:
                port = await self.flow.capture.open(self.call_id, role)
            except (OSError, RuntimeError) as exc:
                log.warning("call %s: no audio capture for %s: %s", self.call_id, role, exc)
                continue
            tap = Tap(
                leg=role,
                bridge_id=f"{self.call_id}-tap-{role}",
                snoop_id=f"{self.call_id}-snoop-{role}",
                media_id=f"{self.call_id}-media-{role}",
                port=port,
            )
            self.taps[role] = tap
            self.flow.register_channel(tap.snoop_id, self, f"snoop:{role}")
            self.flow.register_channel(tap.media_id, self, f"media:{role}")
            try:
                await self.pbx.create_bridge(tap.bridge_id, "mixing")
                await self.pbx.external_media(
                    app=config.app,
                    external_host=f"{config.rtp_host}:{port}",
                    fmt="ulaw",
                    channel_id=tap.media_id,
                )
                await self.pbx.snoop(
                    leg.channel_id,
                    snoop_id=tap.snoop_id,
                    app=config.app,
                    app_args=f"snoop,{self.call_id},{role}",
                    spy="in",
                )
            except AriError as exc:
                log.warning("call %s: audio tap for %s failed: %s", self.call_id, role, exc)

    # -- during the call ------------------------------------------------------------------------

    async def on_channel_event(
        self, etype: str, role: str, event: Mapping[str, Any], ts_ms: int
    ) -> None:
        if ":" in role:  # helper channels: only their StasisStart matters
            return
        leg = self.legs.get(role)
        if leg is None:
            return
        channel = event.get("channel") or {}
        if etype == "ChannelDtmfReceived":
            digit = str(event.get("digit", ""))
            if self.active and _DTMF.match(digit):
                self.event("dtmf", ts_ms, leg=role, digit=digit)
        elif etype == "ChannelStateChange":
            await self.on_state_change(role, str(channel.get("state", "")), ts_ms)
        elif etype in ("ChannelHold", "ChannelUnhold"):
            if self.active:
                self.event("hold" if etype == "ChannelHold" else "unhold", ts_ms, leg=role)
        elif etype in ("ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"):
            leg.gone = True
            if self.active:
                await self.end(ts_ms, hangup_cause(event.get("cause")), role)

    async def on_playback(self, etype: str, playback_id: str, state: str, ts_ms: int) -> None:
        info = self.playbacks.get(playback_id)
        if info is None:
            return
        attrs = {"media": info.media, "target": info.target}
        if info.command_id:
            attrs["command_id"] = info.command_id
        notice = info.kind == "notice"
        if etype == "PlaybackStarted":
            if self.active:
                if notice:
                    self.event("notice_started", ts_ms, leg="caller", attrs={"notice": info.media})
                else:
                    leg = info.target if info.target in LEGS else ""
                    self.event("playback_started", ts_ms, leg=leg, attrs=attrs)
            return
        # PlaybackFinished: state is "done" (or "failed" when the media could not play)
        self.playbacks.pop(playback_id, None)
        self.flow.forget_playback(playback_id)
        if info.done is not None and not info.done.done():
            info.done.set_result(state or "done")
        if not self.active:
            return
        status = {"status": state} if state and state != "done" else {}
        if notice:
            self.event(
                "notice_finished", ts_ms, leg="caller", attrs={"notice": info.media, **status}
            )
            if self.phase == NOTICES:
                await self._next_notice(ts_ms)
        else:
            leg = info.target if info.target in LEGS else ""
            self.event("playback_finished", ts_ms, leg=leg, attrs={**attrs, **status})
            if self.phase in (RINGING, STAFF_RINGING) and self.ringback == "moh":
                # ARI suspends MOH for a playback on the same channel and does not resume it
                await self._start_ringback()

    # -- ending ---------------------------------------------------------------------------------

    async def end(
        self,
        ts_ms: int,
        cause: str,
        hungup_by: str,
        *,
        attrs: Mapping[str, str] | None = None,
    ) -> None:
        """End the call once: event, hang up what is left, tear down, flush audio."""
        if not self.active:
            return
        self.phase = ENDED
        self.ended_ms = ts_ms
        self.hangup_cause = cause
        self.hungup_by = hungup_by
        self.cancel_timer()
        for info in self.playbacks.values():
            if info.done is not None and not info.done.done():
                info.done.set_result("call ended")
        self.event(
            "hangup",
            ts_ms,
            leg=hungup_by if hungup_by in LEGS else "",
            cause=cause,
            attrs={"hungup_by": hungup_by, **(attrs or {})},
        )
        if self.recording:
            self.event(
                "recording_stopped", ts_ms, attrs={"name": self.recording, "reason": "hangup"}
            )
            self.recording = ""
        reason = ari_reason(cause)
        for leg in self.legs.values():
            if not leg.gone:
                leg.gone = True
                await self._quietly(self.pbx.hangup(leg.channel_id, reason), f"hang up {leg.role}")
        for tap in self.taps.values():
            await self._quietly(self.pbx.hangup(tap.snoop_id), "hang up snoop")
            await self._quietly(self.pbx.hangup(tap.media_id), "hang up external media")
            await self._quietly(self.pbx.destroy_bridge(tap.bridge_id), "destroy tap bridge")
        if self.bridge_id:
            await self._quietly(self.pbx.destroy_bridge(self.bridge_id), "destroy bridge")
        for role in list(self.taps):
            try:
                await self.flow.capture.close(self.call_id, role)
            except (OSError, RuntimeError) as exc:
                log.warning("call %s: closing %s audio failed: %s", self.call_id, role, exc)
        log.info(
            "call %s ended: %s (hung up by %s)", self.call_id, self.hangup_cause, self.hungup_by
        )
        self.flow.finished(self)

    def facts(self) -> CallFacts:
        answered = self.answered_ms > 0
        return CallFacts(
            call_id=self.call_id,
            direction=self.direction,
            department=self.department_code,
            caller=self.caller,
            callee=self.callee,
            presented_caller_id=self.presented_caller_id,
            started_ms=self.started_ms,
            answered_ms=self.answered_ms,
            ended_ms=self.ended_ms,
            hangup_cause=self.hangup_cause,
            disposition=disposition_for(answered, self.hangup_cause or "normal"),
        )

    # -- commands (the applier holds the lock) --------------------------------------------------

    async def command_play(
        self, media: str, target: str, playback_id: str, command_id: str
    ) -> asyncio.Future[str]:
        """Start a playback; the future resolves with its final state (for ``wait=true``)."""
        if not self.active:
            raise CommandFailed("call not active")
        uri = media_uri(media, self.flow.config.sounds_dir)
        if playback_id in self.playbacks:
            raise CommandFailed("a playback with this id is already running")
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        info = Playback(playback_id, "command", media, target, command_id, done)
        if target == "call" and self.bridge_id:
            play = self.pbx.play_on_bridge(self.bridge_id, uri, playback_id)
        else:
            role = "caller" if target == "call" else target
            leg = self.legs.get(role)
            if leg is None or leg.gone or not leg.in_stasis or not leg.answered:
                raise CommandFailed(f"{role} leg not connected")
            play = self.pbx.play_on_channel(leg.channel_id, uri, playback_id)
        self.playbacks[playback_id] = info
        self.flow.register_playback(playback_id, self)
        try:
            await play
        except (AriError, PbxUnavailable):
            self.playbacks.pop(playback_id, None)
            self.flow.forget_playback(playback_id)
            raise
        return done

    async def command_hangup(self, cause: str, command_id: str) -> None:
        """Hang up both legs, then end.  The legs are hung up before the call counts as ended
        so that an unreachable PBX raises (and the command is retried) instead of being lost."""
        if not self.active:
            raise CommandFailed("call not active")
        reason = ari_reason(cause)
        for leg in self.legs.values():
            if not leg.gone:
                with contextlib.suppress(AriError):  # already gone on the PBX side
                    await self.pbx.hangup(leg.channel_id, reason)
                leg.gone = True
        await self.end(self.flow.now_ms(), cause, "system", attrs={"command_id": command_id})

    async def command_set_ringback(self, moh_class: str, tone: bool) -> str:
        if not self.active:
            raise CommandFailed("call not active")
        self.ringback_class = moh_class or self.ringback_class
        self.ringback_tone = tone
        if self.phase in (RINGING, STAFF_RINGING) and self.ringback:
            await self._stop_ringback()
            await self._start_ringback()
            return "ringback changed"
        return "ringback set for this call"

    async def command_start_recording(self, command_id: str) -> str:
        if not self.active:
            raise CommandFailed("call not active")
        if self.phase != BRIDGED or not self.bridge_id:
            raise CommandFailed("call not bridged")
        if self.recording:
            raise CommandFailed("already recording")
        await self.pbx.record_bridge(self.bridge_id, self.call_id, "wav", "overwrite")
        self.recording = self.call_id
        self.event(
            "recording_started",
            self.flow.now_ms(),
            attrs={"name": self.call_id, "command_id": command_id},
        )
        return f"recording {self.call_id}.wav"

    async def command_stop_recording(self, command_id: str) -> str:
        if not self.active:
            raise CommandFailed("call not active")
        if not self.recording:
            raise CommandFailed("not recording")
        name = self.recording
        await self.pbx.stop_recording(name)
        self.recording = ""
        self.event(
            "recording_stopped", self.flow.now_ms(), attrs={"name": name, "command_id": command_id}
        )
        return f"recording {name} stopped"
