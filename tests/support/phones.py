"""SIP test phones for the local Asterisk PBX, on pjsua2 (PyPI ``pjsua2-python``).

One pjsua2 ``Endpoint`` per process (a pjsua2 rule): get it with :func:`phone_system`
(a lazily started, process-wide singleton, destroyed at interpreter exit) or use
``PhoneSystem`` as a context manager when a script owns the whole process.

    from tests.support.phones import phone_system

    phones = phone_system()
    citizen = phones.register("caller01")           # REGISTER to 127.0.0.1:25060, password "test"
    staff = phones.register("staff01")
    call = citizen.call("sip:9000@127.0.0.1:25060")
    call.wait_confirmed(10)
    call.record_to("/tmp/heard.wav")                 # what the phone receives
    call.wait_disconnected(20)                       # the PBX hung up (BYE)

    incoming = staff.wait_incoming(10)               # a call delivered to staff01
    incoming.remote_number, incoming.headers["p-asserted-identity"]
    incoming.answer(); incoming.play_wav("speech.wav"); incoming.send_dtmf("1#")

Threading model: pjsua2 runs with ``threadCnt = 0``: no SIP worker thread, SIP events and
every callback are processed by whichever thread calls :meth:`PhoneSystem.pump` (every
``wait_*`` method pumps while it waits). Between waits nothing answers SIP, so instead of
``time.sleep`` use ``phones.pump(seconds)``. Media (RTP, WAV player/recorder) runs on pjmedia's
own threads and a null sound device clocks the conference bridge, so audio keeps flowing
while Python does other things. Any thread may call the API (it is registered with pjlib on
first use), e.g. from ``asyncio.to_thread``; calls from several threads at once are
serialised by a lock.

Limits of the ``pjsua2-python`` wheel (compile-time PJSUA_MAX_ACC / PJSUA_MAX_CALLS): at
most :data:`MAX_PHONES` (8) phones and :data:`MAX_CALLS` (4) simultaneous calls per process;
a 9th phone is refused here (pjsua would abort the process), a 5th call raises pjsua2.Error
(PJ_ETOOMANY). Benchmarks needing more run several processes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pjsua2 as pj

DEFAULT_DOMAIN = "127.0.0.1:25060"
DEFAULT_PASSWORD = "test"
MAX_PHONES = 8  # PJSUA_MAX_ACC in the wheel: the 9th account aborts the process in C
MAX_CALLS = 4  # PJSUA_MAX_CALLS in the wheel: a 5th simultaneous call fails (PJ_ETOOMANY)

STATES = {
    "NULL": pj.PJSIP_INV_STATE_NULL,
    "CALLING": pj.PJSIP_INV_STATE_CALLING,
    "INCOMING": pj.PJSIP_INV_STATE_INCOMING,
    "EARLY": pj.PJSIP_INV_STATE_EARLY,
    "CONNECTING": pj.PJSIP_INV_STATE_CONNECTING,
    "CONFIRMED": pj.PJSIP_INV_STATE_CONFIRMED,
    "DISCONNECTED": pj.PJSIP_INV_STATE_DISCONNECTED,
}
STATE_NAMES = {v: k for k, v in STATES.items()}

# compact SIP header forms (RFC 3261 §7.3.3) that can appear in a received INVITE
_COMPACT = {
    "f": "from",
    "t": "to",
    "m": "contact",
    "i": "call-id",
    "v": "via",
    "l": "content-length",
}


class PhoneError(RuntimeError):
    """A phone operation failed or a wait timed out."""


def _state_value(state: str | int) -> int:
    if isinstance(state, str):
        try:
            return STATES[state.upper()]
        except KeyError:
            raise ValueError(f"unknown call state {state!r}; one of {sorted(STATES)}") from None
    return state


def parse_sip_headers(message: str) -> dict[str, list[str]]:
    """Header name (lower case, compact forms expanded) -> values, from a raw SIP message."""
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")[1:]  # drop the request/status line
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines:
        if line[:1] in (" ", "\t") and last is not None:  # folded continuation line
            headers[last][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key
    return headers


_URI_USER = re.compile(r"<?\s*(?:sips?|tel):([^@;>]+)")
_DISPLAY = re.compile(r'^\s*"([^"]*)"|^\s*([^<"]+?)\s*<')


def uri_user(value: str) -> str | None:
    """The user part of the first SIP/tel URI in a header value: ``"A" <sip:0101@h>`` -> 0101."""
    m = _URI_USER.search(value)
    return m.group(1) if m else None


def display_name(value: str) -> str | None:
    m = _DISPLAY.search(value)
    if not m:
        return None
    return m.group(1) if m.group(1) is not None else m.group(2)


def wav_complete(path: str | os.PathLike[str]) -> bool:
    """True when a RIFF/WAVE file's header accounts for all its bytes (a pjmedia recorder
    writes the sizes only when it is closed)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
        size = os.path.getsize(path)
    except OSError:
        return False
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            return pos + 8 + length == size
        pos += 8 + length + (length & 1)
    return False


@dataclass
class IncomingInvite:
    """What the phone received in the INVITE that created an incoming call."""

    source: str  # ip:port it came from
    raw: str  # the whole SIP message
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


class Call(pj.Call):
    """One call leg on a test phone (outgoing or incoming)."""

    def __init__(self, phone: Phone, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(phone, call_id)
        self.phone = phone
        self.system = phone.system
        self.state: int = pj.PJSIP_INV_STATE_NULL
        self.state_history: list[str] = []
        self.last_status: int | None = None
        self.last_reason: str = ""
        self.remote_uri: str = ""
        self.call_id_header: str = ""
        self.invite: IncomingInvite | None = None
        self._audio: pj.AudioMedia | None = None
        self._media_active = False
        self._players: list[pj.AudioMediaPlayer] = []
        self._recorders: list[tuple[pj.AudioMediaRecorder, Path]] = []

    # ---- pjsua2 callbacks (run on the pumping thread) ----
    def onCallState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
        info = self.getInfo()
        self.state = info.state
        self.state_history.append(STATE_NAMES.get(info.state, str(info.state)))
        self.last_status = info.lastStatusCode
        self.last_reason = info.lastReason
        self.remote_uri = info.remoteUri
        self.call_id_header = info.callIdString
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._media_active = False
            self._audio = None

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self._audio = self.getAudioMedia(index)
                self._media_active = True
                return

    # ---- state ----
    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, str(self.state))

    @property
    def confirmed(self) -> bool:
        return self.state == pj.PJSIP_INV_STATE_CONFIRMED

    @property
    def disconnected(self) -> bool:
        return self.state == pj.PJSIP_INV_STATE_DISCONNECTED

    def wait_state(self, state: str | int, timeout: float = 10) -> Call:
        """Wait until the call reaches ``state`` ("CONFIRMED", "EARLY", ...). A call that
        disconnects first raises PhoneError (unless DISCONNECTED was asked for)."""
        target = _state_value(state)
        name = STATE_NAMES.get(target, str(target))

        def reached() -> bool:
            if self.state == target:
                return True
            if self.disconnected:
                raise PhoneError(
                    f"{self.phone.username}: call disconnected ({self.last_status} "
                    f"{self.last_reason}) while waiting for {name}"
                )
            return False

        self.system.wait_for(reached, timeout, f"{self.phone.username}: call state {name}")
        return self

    def wait_confirmed(self, timeout: float = 10) -> Call:
        return self.wait_state("CONFIRMED", timeout)

    def wait_disconnected(self, timeout: float = 10) -> Call:
        self.system.wait_for(
            lambda: self.disconnected, timeout, f"{self.phone.username}: call disconnected"
        )
        self.stop_recording()
        return self

    def wait_media(self, timeout: float = 10) -> pj.AudioMedia:
        self.system.wait_for(
            lambda: self._media_active or self.disconnected,
            timeout,
            f"{self.phone.username}: active audio",
        )
        if self._audio is None:
            raise PhoneError(f"{self.phone.username}: call ended before audio was active")
        return self._audio

    # ---- caller ID as received (incoming calls) ----
    @property
    def headers(self) -> dict[str, str]:
        """First value of each header of the received INVITE (lower-case names)."""
        if self.invite is None:
            return {}
        return {k: v[0] for k, v in self.invite.headers.items()}

    @property
    def remote_number(self) -> str | None:
        """Caller number as a phone would show it: P-Asserted-Identity, else Remote-Party-ID,
        else From user part."""
        for name in ("p-asserted-identity", "remote-party-id", "from"):
            value = self.headers.get(name)
            if value:
                return uri_user(value)
        return uri_user(self.remote_uri) if self.remote_uri else None

    @property
    def remote_name(self) -> str | None:
        for name in ("p-asserted-identity", "remote-party-id", "from"):
            value = self.headers.get(name)
            if value:
                return display_name(value)
        return None

    # ---- actions ----
    def answer(self, code: int = 200, timeout: float = 10) -> Call:
        """Answer (200 waits until CONFIRMED, i.e. the ACK arrived)."""
        with self.system.lock:
            self.system.ensure_thread()
            prm = pj.CallOpParam(True)
            prm.statusCode = code
            super().answer(prm)
        if code == 200:
            self.wait_confirmed(timeout)
        return self

    def ring(self) -> Call:
        return self.answer(180)

    def hangup(self, code: int = 0, timeout: float = 10) -> Call:
        """Hang up (BYE, CANCEL or a final error response) and wait for DISCONNECTED."""
        if not self.disconnected:
            with self.system.lock:
                self.system.ensure_thread()
                prm = pj.CallOpParam(True)
                if code:
                    prm.statusCode = code
                with contextlib.suppress(pj.Error):  # already ending
                    super().hangup(prm)
        return self.wait_disconnected(timeout)

    def play_wav(self, path: str | os.PathLike[str], loop: bool = False) -> pj.AudioMediaPlayer:
        """Send a WAV file (any rate; resampled) into the call. Without ``loop`` it plays
        once, then silence; stop it early with :meth:`stop_playing`."""
        audio = self.wait_media()
        with self.system.lock:
            self.system.ensure_thread()
            player = pj.AudioMediaPlayer()
            player.createPlayer(str(path), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
            player.startTransmit(audio)
            self._players.append(player)
        return player

    def stop_playing(self) -> None:
        with self.system.lock:
            self.system.ensure_thread()
            while self._players:
                player = self._players.pop()
                if self._audio is not None:
                    with contextlib.suppress(pj.Error):
                        player.stopTransmit(self._audio)
                del player

    def record_to(self, path: str | os.PathLike[str]) -> Path:
        """Record what this phone receives into a WAV file (16-bit mono, at the endpoint's
        clock rate). The file is complete after :meth:`stop_recording` (called by
        :meth:`wait_disconnected`, :meth:`hangup` and at shutdown)."""
        audio = self.wait_media()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.system.lock:
            self.system.ensure_thread()
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(str(target))
            audio.startTransmit(recorder)
            self._recorders.append((recorder, target))
        return target

    def stop_recording(self, timeout: float = 5) -> list[Path]:
        """Finish every recording of this call and wait until each WAV file is complete."""
        done: list[Path] = []
        with self.system.lock:
            self.system.ensure_thread()
            while self._recorders:
                recorder, target = self._recorders.pop()
                if self._audio is not None:
                    with contextlib.suppress(pj.Error):
                        self._audio.stopTransmit(recorder)
                # destroying the recorder closes the file - asynchronously: since pjsip 2.14
                # the conference bridge removes ports on its clock thread
                del recorder
                done.append(target)
        for target in done:
            self.system.wait_for(
                lambda t=target: wav_complete(t), timeout, f"{target} to be finalised"
            )
        return done

    def send_dtmf(self, digits: str) -> None:
        """Send DTMF as RFC 4733 telephone-events."""
        self.wait_media()
        with self.system.lock:
            self.system.ensure_thread()
            super().dialDtmf(digits)

    def _release_media(self) -> None:
        self.stop_playing()
        self.stop_recording()


class Phone(pj.Account):
    """A SIP account (one endpoint of the PBX, e.g. caller01)."""

    def __init__(self, system: PhoneSystem, username: str, password: str, domain: str) -> None:
        super().__init__()
        self.system = system
        self.username = username
        self.password = password
        self.domain = domain
        self.reg_code: int | None = None
        self.reg_active = False
        self.reg_events = 0
        self.calls: list[Call] = []
        self.incoming: deque[Call] = deque()
        self.auto_ring = True

    @property
    def uri(self) -> str:
        return f"sip:{self.username}@{self.domain}"

    # ---- pjsua2 callbacks ----
    def onRegState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
        self.reg_code = prm.code
        self.reg_active = self.getInfo().regIsActive
        self.reg_events += 1

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
        call = Call(self, prm.callId)
        raw = prm.rdata.wholeMsg
        call.invite = IncomingInvite(
            source=prm.rdata.srcAddress, raw=raw, headers=parse_sip_headers(raw)
        )
        info = call.getInfo()
        call.state = info.state
        call.remote_uri = info.remoteUri
        call.call_id_header = info.callIdString
        self.calls.append(call)
        self.incoming.append(call)
        if self.auto_ring:
            op = pj.CallOpParam(True)
            op.statusCode = 180
            with contextlib.suppress(pj.Error):
                pj.Call.answer(call, op)  # the pjsua2 method; Call.answer() takes a code

    # ---- API ----
    def call(
        self,
        uri: str,
        headers: dict[str, str] | None = None,
    ) -> Call:
        """Place a call. ``uri`` may be a full SIP URI or just the number to dial at the
        phone's domain (``"9000"`` -> ``sip:9000@127.0.0.1:25060``)."""
        if not uri.startswith(("sip:", "sips:", "tel:")):
            uri = f"sip:{uri}@{self.domain}"
        with self.system.lock:
            self.system.ensure_thread()
            call = Call(self)
            prm = pj.CallOpParam(True)
            for name, value in (headers or {}).items():
                h = pj.SipHeader()
                h.hName = name
                h.hValue = value
                prm.txOption.headers.append(h)
            try:
                call.makeCall(uri, prm)
            except pj.Error as exc:
                hint = ""
                if "ETOOMANY" in exc.reason:
                    hint = f" (at most {MAX_CALLS} simultaneous calls per process)"
                raise PhoneError(
                    f"{self.username}: calling {uri} failed: {exc.reason}{hint}"
                ) from None
            self.calls.append(call)
        return call

    def wait_incoming(self, timeout: float = 10) -> Call:
        """The next incoming call not yet taken (already ringing: 180 sent)."""
        self.system.wait_for(
            lambda: bool(self.incoming), timeout, f"{self.username}: incoming call"
        )
        return self.incoming.popleft()

    def reregister(self, timeout: float = 10) -> Phone:
        """Send REGISTER again and wait for 200 (e.g. after the PBX restarted)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.system.lock:
                self.system.ensure_thread()
                before = self.reg_events
                try:
                    self.setRegistration(True)
                    break
                except pj.Error as exc:
                    # EBUSY: a REGISTER (e.g. the periodic refresh) is still in flight;
                    # let it finish and send ours after it.
                    if "EBUSY" not in exc.reason or time.monotonic() >= deadline:
                        raise PhoneError(
                            f"{self.username}: REGISTER failed: {exc.reason}"
                        ) from None
            self.system.pump(0.2)
        self.system.wait_for(
            lambda: self.reg_events > before, timeout, f"{self.username}: REGISTER answered"
        )
        if self.reg_code != 200:
            raise PhoneError(f"{self.username}: REGISTER answered {self.reg_code}")
        return self

    def hangup_all(self, timeout: float = 10) -> None:
        for call in list(self.calls):
            if not call.disconnected and call.state != pj.PJSIP_INV_STATE_NULL:
                call.hangup(timeout=timeout)


class PhoneSystem:
    """The process's single pjsua2 Endpoint: a UDP SIP transport on loopback, a null audio
    device and up to :data:`MAX_PHONES` phones."""

    _active: PhoneSystem | None = None

    def __init__(
        self,
        sip_port: int = 0,
        *,
        rtp_port_base: int = 40000,
        rtp_port_range: int = 2000,
        clock_rate: int = 8000,
        log_level: int = 1,
        log_file: str | None = None,
        bind_address: str = "127.0.0.1",
    ) -> None:
        self.sip_port = sip_port
        self.rtp_port_base = rtp_port_base
        self.rtp_port_range = rtp_port_range
        self.clock_rate = clock_rate
        self.log_level = log_level
        self.log_file = log_file
        self.bind_address = bind_address
        self.lock = threading.RLock()
        self.ep: pj.Endpoint | None = None
        self.phones: dict[str, Phone] = {}
        self.local_port: int | None = None

    # ---- lifecycle ----
    def start(self) -> PhoneSystem:
        if self.ep is not None:
            return self
        if PhoneSystem._active is not None:
            raise PhoneError("pjsua2 allows one Endpoint per process: use phone_system()")
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0  # SIP events only where pump() runs
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = "callguard-test-phone"
        cfg.logConfig.level = self.log_level
        cfg.logConfig.consoleLevel = self.log_level if self.log_file is None else 0
        if self.log_file:
            cfg.logConfig.filename = self.log_file
        cfg.medConfig.clockRate = self.clock_rate
        cfg.medConfig.sndClockRate = self.clock_rate
        cfg.medConfig.channelCount = 1
        cfg.medConfig.ecTailLen = 0  # no echo canceller: records exactly what arrives
        cfg.medConfig.noVad = True
        # keep the (null) sound device, which clocks the conference bridge, open for good:
        # players, recorders and port removals only progress while it runs
        cfg.medConfig.sndAutoCloseTime = -1
        ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = self.sip_port
        tcfg.boundAddress = self.bind_address
        tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.local_port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[-1])
        ep.libStart()
        ep.audDevManager().setNullDev()
        # G.711 only, μ-law first: what the PBX endpoints allow and what telephony carries
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, 0)
        ep.codecSetPriority("PCMU/8000", 255)
        ep.codecSetPriority("PCMA/8000", 254)
        self.ep = ep
        PhoneSystem._active = self
        return self

    def close(self) -> None:
        """Hang up every call, unregister, destroy the Endpoint."""
        if self.ep is None:
            return
        with self.lock:
            self.ensure_thread()
            for phone in self.phones.values():
                for call in phone.calls:
                    call._release_media()
            with contextlib.suppress(pj.Error):
                self.ep.hangupAllCalls()
            self.pump(0.3)
            for phone in self.phones.values():
                with contextlib.suppress(pj.Error):
                    phone.shutdown()  # un-REGISTER
            self.pump(0.3)
            # A pjsua2 Call/Account deleted after libDestroy() trips a C assertion, and one
            # deleted earlier may clear a newer call's state (call ids are reused). So they
            # are never deleted from Python: kept while the system lives, disowned here.
            for phone in self.phones.values():
                for call in phone.calls:
                    call.thisown = False
                phone.thisown = False
                phone.calls.clear()
                phone.incoming.clear()
            self.phones.clear()
            self.ep.libDestroy()
            self.ep = None
            PhoneSystem._active = None

    def __enter__(self) -> PhoneSystem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- event processing ----
    def ensure_thread(self) -> None:
        """Register the calling thread with pjlib (needed once per foreign thread)."""
        if self.ep is None:
            raise PhoneError("PhoneSystem is not started")
        if not self.ep.libIsThreadRegistered():
            self.ep.libRegisterThread(f"py-{threading.get_ident()}")

    def pump(self, seconds: float = 0.0) -> None:
        """Process SIP events for ``seconds`` (at least one pass)."""
        deadline = time.monotonic() + seconds
        while True:
            with self.lock:
                self.ensure_thread()
                assert self.ep is not None
                self.ep.libHandleEvents(10)
            if time.monotonic() >= deadline:
                return

    def wait_for(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Pump events until ``check()`` is true; PhoneError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() >= deadline:
                raise PhoneError(f"timed out after {timeout} s waiting for {what}")
            self.pump()

    # ---- phones ----
    def register(
        self,
        username: str,
        password: str = DEFAULT_PASSWORD,
        domain: str = DEFAULT_DOMAIN,
        *,
        registrar: bool = True,
        timeout: float = 10,
    ) -> Phone:
        """A phone for ``username`` (an endpoint of the PBX). With ``registrar`` it REGISTERs
        and waits for 200, so the PBX can call it. Asking again for the same username
        returns the same phone, registered anew."""
        existing = self.phones.get(username)
        if existing is not None:
            return existing.reregister(timeout) if registrar else existing
        if len(self.phones) >= MAX_PHONES:
            raise PhoneError(
                f"pjsua2-python allows {MAX_PHONES} phones per process; run another process"
            )
        with self.lock:
            self.ensure_thread()
            phone = Phone(self, username, password, domain)
            acfg = pj.AccountConfig()
            acfg.idUri = f"sip:{username}@{domain}"
            if registrar:
                acfg.regConfig.registrarUri = f"sip:{domain}"
                acfg.regConfig.timeoutSec = 300
                acfg.regConfig.retryIntervalSec = 2
            else:
                acfg.regConfig.registrarUri = ""
            acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", username, 0, password))
            acfg.mediaConfig.transportConfig.port = self.rtp_port_base
            acfg.mediaConfig.transportConfig.portRange = self.rtp_port_range
            acfg.mediaConfig.transportConfig.boundAddress = self.bind_address
            phone.create(acfg)
            self.phones[username] = phone
        if registrar:
            self.wait_for(
                lambda: phone.reg_code is not None, timeout, f"{username}: REGISTER answered"
            )
            if phone.reg_code != 200 or not phone.reg_active:
                raise PhoneError(f"{username}: REGISTER answered {phone.reg_code}")
        return phone

    def hangup_all(self, timeout: float = 10) -> None:
        for phone in self.phones.values():
            phone.hangup_all(timeout)


_shared: PhoneSystem | None = None
_shared_lock = threading.Lock()


def phone_system(**kwargs: Any) -> PhoneSystem:
    """The process-wide PhoneSystem, started on first use (kwargs apply then only) and
    closed at interpreter exit. The safe choice under pytest: a session fixture can simply
    ``return phone_system()``."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PhoneSystem(**kwargs).start()
            atexit.register(_close_shared)
        return _shared


def _close_shared() -> None:
    global _shared
    if _shared is not None:
        with contextlib.suppress(Exception):
            _shared.close()
        _shared = None
