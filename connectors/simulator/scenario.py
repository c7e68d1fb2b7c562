"""Simulated calls: a deterministic plan, and the wire records a PBX would have sent for it.

Without a PBX (development, demos, load tests) the pipeline still needs realistic traffic:
call events, a CDR and both legs' audio, with the untidy parts real calls have (unanswered
calls, callers hanging up, a staff member pressing ``*9``).  Everything here is pure: the same
seed, start time and clips give the same calls and byte-identical records, so tests can compare
runs.  Every record carries ``origin="simulator"``; phone numbers are from the unassigned
``010-0000-xxxx`` range, so simulated data can never be mistaken for a real citizen's.

Legs: ``caller`` is always the citizen and ``staff`` the employee, whatever the direction.  The
timeline is the same for both directions (an outbound call merely swaps caller and callee): the
consent notice plays while the staff phone rings, then the call is answered and bridged at once,
and the talk time runs from the answer to the hangup (so CDR ``billsec_s`` = talk time).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from math import ceil

import numpy as np

from connectors.simulator.audio import SAMPLE_RATE, Clip, resample, to_int16
from schemas.records import AudioChunk, CallEvent, Cdr

ORIGIN = "simulator"
DEPARTMENTS = ("traffic", "housing", "welfare", "tax")
NOTICE = "consent-notice"  # the PBX sound name the consent check expects (recording.toml)
TALK_MS = (5_000, 30_000)  # talk time range per answered call
TURN_GAP_MS = 400  # silence between speech turns
NOISE_RMS = 20.0  # line noise, about -64 dBFS
P_OUTBOUND = 0.15
P_NO_ANSWER = 0.10
P_CALLER_HANGUP = 0.15  # of answered calls
P_DTMF = 0.15  # of answered calls: staff presses "*9"
P_STAFF_SPEECH = 0.5  # of answered calls: the staff leg plays a clip, not only line noise
DTMF_DIGITS = "*9"

#: one timeline entry: offset from the call start, and the event's own fields
TimelineEntry = tuple[int, dict[str, str]]


@dataclass(frozen=True)
class SimulatedCall:
    """One planned call. ``caller_clip`` / ``staff_clip`` name clips; ``staff_clip`` "" = noise."""

    call_id: str
    department: str
    direction: str
    caller: str
    callee: str
    presented_caller_id: str
    start_ms: int
    timeline: list[TimelineEntry]
    talk_ms: int  # 0 when unanswered
    answer_offset_ms: int  # 0 when unanswered
    end_offset_ms: int
    hangup_cause: str
    disposition: str
    caller_clip: str
    staff_clip: str
    noise_seed: int

    @property
    def answered(self) -> bool:
        return self.disposition == "ANSWERED"

    @property
    def answer_ms(self) -> int:
        return self.start_ms + self.answer_offset_ms if self.answered else 0

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.end_offset_ms


def _fake_mobile(rng: random.Random) -> str:
    return f"010-0000-{rng.randrange(10_000):04d}"


def _plan_one(
    call_id: str,
    rng: random.Random,
    start_ms: int,
    department: str,
    extension: str,
    clips: Sequence[Clip],
) -> SimulatedCall:
    citizen = _fake_mobile(rng)
    outbound = rng.random() < P_OUTBOUND
    ring_leg = "caller" if outbound else "staff"
    caller_clip = rng.choice(clips)
    others = [c for c in clips if c is not caller_clip]
    staff_clip = rng.choice(others).name if others and rng.random() < P_STAFF_SPEECH else ""

    t = rng.randint(20, 120)
    timeline: list[TimelineEntry] = [
        (0, {"type": "call_started"}),
        (t, {"type": "ringing", "leg": ring_leg}),
    ]
    t += rng.randint(10, 50)
    timeline.append((t, {"type": "notice_started", "leg": "caller"}))
    t += rng.randint(2_900, 3_200)
    timeline.append((t, {"type": "notice_finished", "leg": "caller"}))

    if rng.random() < P_NO_ANSWER:
        answer, talk, end = 0, 0, t + rng.randint(15_000, 25_000)
        cause, disposition = "no_answer", "NO ANSWER"
        timeline.append((end, {"type": "hangup", "hangup_cause": cause}))
    else:
        answer = t + rng.randint(200, 4_000)
        talk = rng.randint(*TALK_MS)
        end = answer + talk
        disposition = "ANSWERED"
        timeline += [(answer, {"type": "answered", "leg": ring_leg}), (answer, {"type": "bridged"})]
        if rng.random() < P_DTMF:
            press = answer + int(talk * rng.uniform(0.3, 0.8))
            for i, digit in enumerate(DTMF_DIGITS):
                timeline.append((press + 250 * i, {"type": "dtmf", "leg": "staff", "digit": digit}))
        cause = "caller_hangup" if rng.random() < P_CALLER_HANGUP else "normal"
        leg = "caller" if cause == "caller_hangup" else "staff"
        timeline.append((end, {"type": "hangup", "leg": leg, "hangup_cause": cause}))
    return SimulatedCall(
        call_id=call_id,
        department=department,
        direction="outbound" if outbound else "inbound",
        caller=extension if outbound else citizen,
        callee=citizen if outbound else extension,
        presented_caller_id=extension if outbound else citizen,
        start_ms=start_ms,
        timeline=timeline,
        talk_ms=talk,
        answer_offset_ms=answer,
        end_offset_ms=end,
        hangup_cause=cause,
        disposition=disposition,
        caller_clip=caller_clip.name,
        staff_clip=staff_clip,
        noise_seed=rng.randrange(2**32),
    )


def plan_calls(
    n_calls: int,
    *,
    seed: int,
    start_ms: int,
    clips: Sequence[Clip],
    departments: tuple[str, ...] = DEPARTMENTS,
    mean_gap_ms: int = 3000,
) -> list[SimulatedCall]:
    """``n_calls`` calls starting ``mean_gap_ms`` apart on average (Poisson arrivals).

    Call ``n`` depends only on the seed, ``n`` and its start time, so a shorter plan is a prefix
    of a longer one with the same seed.
    """
    if not clips:
        raise ValueError("the simulator needs at least one speech clip")
    if not departments:
        raise ValueError("the simulator needs at least one department")
    arrivals = random.Random(f"callguard-sim:{seed}:arrivals")
    calls: list[SimulatedCall] = []
    t = start_ms
    for n in range(1, n_calls + 1):
        if n > 1:
            t += round(arrivals.expovariate(1 / max(mean_gap_ms, 1)))
        rng = random.Random(f"callguard-sim:{seed}:{n}")
        index = rng.randrange(len(departments))
        extension = f"2{index % 9 + 1}{rng.randrange(100):02d}"
        calls.append(_plan_one(f"sim-{seed}-{n}", rng, t, departments[index], extension, clips))
    return calls


def events(call: SimulatedCall) -> list[CallEvent]:
    """The call's PBX events, in timeline order; ``event_id`` = ``<call_id>-e<index>``."""
    out: list[CallEvent] = []
    for index, (offset, fields) in enumerate(call.timeline):
        attrs: dict[str, str] = {}
        if fields["type"] == "call_started":
            attrs = {"simulated": "true", "fake_numbers": "true", "caller_clip": call.caller_clip}
        elif fields["type"] == "notice_started":
            attrs = {"notice": NOTICE}
        out.append(
            CallEvent(
                event_id=f"{call.call_id}-e{index:02d}",
                call_id=call.call_id,
                type=fields["type"],
                ts_ms=call.start_ms + offset,
                direction=call.direction,
                department=call.department,
                caller=call.caller,
                callee=call.callee,
                presented_caller_id=call.presented_caller_id,
                leg=fields.get("leg", ""),
                digit=fields.get("digit", ""),
                hangup_cause=fields.get("hangup_cause", ""),
                attrs=attrs,
                origin=ORIGIN,
            )
        )
    return out


def cdr(call: SimulatedCall) -> Cdr:
    return Cdr(
        call_id=call.call_id,
        direction=call.direction,
        department=call.department,
        caller=call.caller,
        callee=call.callee,
        presented_caller_id=call.presented_caller_id,
        start_ms=call.start_ms,
        answer_ms=call.answer_ms,
        end_ms=call.end_ms,
        duration_s=call.end_offset_ms / 1000,
        billsec_s=call.talk_ms / 1000,
        disposition=call.disposition,
        hangup_cause=call.hangup_cause,
        origin=ORIGIN,
    )


def _samples(clip: Clip) -> np.ndarray:
    if clip.sample_rate == SAMPLE_RATE:
        return clip.samples.astype(np.float64)
    return resample(clip.samples, clip.sample_rate, SAMPLE_RATE)


def render_legs(call: SimulatedCall, clip_by_name: Mapping[str, Clip]) -> dict[str, np.ndarray]:
    """Both legs' talk-time audio (int16, 8 kHz): speech turns alternate over line noise.

    Without a staff clip the caller's clip simply repeats and the staff leg is noise only.
    """
    n = call.talk_ms * SAMPLE_RATE // 1000
    noise = np.random.default_rng(call.noise_seed)
    legs = {leg: noise.normal(0.0, NOISE_RMS, n) for leg in ("caller", "staff")}
    turns = [("caller", _samples(clip_by_name[call.caller_clip]))]
    if call.staff_clip:
        turns.append(("staff", _samples(clip_by_name[call.staff_clip])))
    gap = TURN_GAP_MS * SAMPLE_RATE // 1000
    pos, turn = 0, 0
    while pos < n:
        leg, speech = turns[turn % len(turns)]
        take = min(len(speech), n - pos)
        legs[leg][pos : pos + take] += speech[:take]
        pos += take + gap
        turn += 1
    return {leg: to_int16(samples) for leg, samples in legs.items()}


def chunk_count(call: SimulatedCall, chunk_ms: int = 200) -> int:
    """Audio chunks per leg (0 for an unanswered call)."""
    return ceil(call.talk_ms / chunk_ms) if call.answered else 0


def audio_chunks(
    call: SimulatedCall, clip_by_name: Mapping[str, Clip], chunk_ms: int = 200
) -> Iterator[AudioChunk]:
    """Both legs' chunks from the answer to the hangup, interleaved in time (caller first).

    A generator: the audio is rendered on the first ``next``, not when it is created.
    """
    if chunk_ms <= 0:
        raise ValueError("chunk_ms must be positive")
    if not call.answered:
        return
    legs = render_legs(call, clip_by_name)
    per_chunk = chunk_ms * SAMPLE_RATE // 1000
    count = chunk_count(call, chunk_ms)
    for seq in range(count):
        for leg in ("caller", "staff"):
            part = legs[leg][seq * per_chunk : (seq + 1) * per_chunk]
            yield AudioChunk(
                call_id=call.call_id,
                leg=leg,
                seq=seq,
                start_ms=call.answer_ms + seq * chunk_ms,
                duration_ms=len(part) * 1000 // SAMPLE_RATE,
                sample_rate=SAMPLE_RATE,
                encoding="pcm_s16le",
                channels=1,
                payload_b64=base64.b64encode(part.astype("<i2").tobytes()).decode("ascii"),
                final=seq == count - 1,
                origin=ORIGIN,
            )


# --- deliberately malformed messages, to exercise the dead-letter path -----------------------

MALFORMED_HEADER = "callguard-simulated-malformed"
#: topic key → kinds of damage, used in turn
MALFORMED_KINDS: dict[str, tuple[str, ...]] = {
    "call_events": ("truncated_json", "unknown_event_type", "missing_field"),
    "cdr": ("missing_field", "truncated_json", "bad_disposition"),
    "audio": ("missing_field", "bad_sample_rate", "truncated_json"),
}


@dataclass(frozen=True)
class BadMessage:
    topic_key: str  # TopicCatalog key: call_events | cdr | audio
    kind: str
    call_id: str
    value: bytes


def _template(topic_key: str, call_id: str, ts_ms: int) -> dict[str, object]:
    if topic_key == "call_events":
        return CallEvent(
            event_id=f"{call_id}-e00",
            call_id=call_id,
            type="call_started",
            ts_ms=ts_ms,
            direction="inbound",
            department="traffic",
            caller="010-0000-0000",
            callee="2100",
            origin=ORIGIN,
        ).asdict()
    if topic_key == "cdr":
        return Cdr(
            call_id=call_id,
            direction="inbound",
            department="traffic",
            caller="010-0000-0000",
            callee="2100",
            presented_caller_id="010-0000-0000",
            start_ms=ts_ms,
            answer_ms=0,
            end_ms=ts_ms,
            duration_s=0.0,
            billsec_s=0.0,
            disposition="NO ANSWER",
            origin=ORIGIN,
        ).asdict()
    return AudioChunk(
        call_id=call_id,
        leg="caller",
        seq=0,
        start_ms=ts_ms,
        duration_ms=0,
        sample_rate=SAMPLE_RATE,
        encoding="pcm_s16le",
        channels=1,
        payload_b64="",
        final=True,
        origin=ORIGIN,
    ).asdict()


_MISSING = {"call_events": "type", "cdr": "disposition", "audio": "seq"}


def malformed_messages(n: int, *, id_prefix: str, ts_ms: int) -> list[BadMessage]:
    """``n`` messages no consumer may accept, spread round-robin over events, CDRs and audio."""
    out: list[BadMessage] = []
    topics = tuple(MALFORMED_KINDS)
    for i in range(n):
        topic_key = topics[i % len(topics)]
        kinds = MALFORMED_KINDS[topic_key]
        kind = kinds[(i // len(topics)) % len(kinds)]
        call_id = f"{id_prefix}-malformed-{i + 1}"
        data = _template(topic_key, call_id, ts_ms)
        if kind == "missing_field":
            del data[_MISSING[topic_key]]
        elif kind == "unknown_event_type":
            data["type"] = "teleported"
        elif kind == "bad_disposition":
            data["disposition"] = "MAYBE"
        elif kind == "bad_sample_rate":
            data["sample_rate"] = 11025
        value = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        if kind == "truncated_json":
            value = value[: len(value) // 2]
        out.append(BadMessage(topic_key, kind, call_id, value))
    return out
