"""The Stasis call flow against a fake PBX: what it asks Asterisk to do, what it emits."""

from __future__ import annotations

import asyncio

import pytest

from connectors.asterisk.callflow import (
    CommandRejected,
    dial_string,
    endpoint_of_channel,
    media_uri,
    number_to_endpoint,
)
from connectors.asterisk.cdr import parse_cdr_tag
from connectors.asterisk.model import hangup_cause
from schemas.codec import decode, encode
from schemas.records import AudioChunk, CallEvent
from tests.unit.test_asterisk_fakes import (
    CITIZEN,
    SOUNDS,
    T0,
    destroyed,
    dtmf,
    event,
    hangup_request,
    make_flow,
    playback,
    stasis_start,
)

CALL = f"call-{1:032x}"
STAFF = f"{CALL}-staff"
CITIZEN_LEG = f"{CALL}-citizen"


async def start_inbound(flow, line: str = "1100", ts: int = T0) -> None:
    await flow.handle(stasis_start("ch-caller", ["inbound", line], ts, number=CITIZEN))


async def bridged_inbound(flow, pbx) -> None:
    """An inbound traffic call, taken up to both legs bridged with audio taps."""
    await start_inbound(flow)
    await flow.handle(playback("PlaybackStarted", f"{CALL}-notice-0", T0 + 100))
    await flow.handle(playback("PlaybackFinished", f"{CALL}-notice-0", T0 + 3100))
    await flow.handle(stasis_start(STAFF, ["staff", CALL], T0 + 8000, state="Up"))


# -- inbound ---------------------------------------------------------------------------------


async def test_inbound_call_from_dial_in_to_hangup() -> None:
    flow, pbx, emitter, capture = make_flow()
    await start_inbound(flow)

    # tagged, answered, and the consent notice plays before anything rings
    tag_calls = pbx.called("set_variable")
    assert [c["name"] for c in tag_calls] == ["CALLGUARD_CALL_ID", "CDR(userfield)"]
    assert all(c["channel_id"] == "ch-caller" for c in tag_calls)
    assert tag_calls[0]["value"] == CALL
    tag = parse_cdr_tag(tag_calls[1]["value"])
    assert tag is not None and (tag.call_id, tag.direction, tag.department) == (
        CALL,
        "inbound",
        "traffic",
    )
    assert pbx.called("answer") == [{"channel_id": "ch-caller"}]
    assert pbx.called("play_on_channel") == [
        {
            "channel_id": "ch-caller",
            "media": f"sound:{SOUNDS}/consent-notice",
            "playback_id": f"{CALL}-notice-0",
        }
    ]
    assert "originate" not in pbx.names()

    await flow.handle(playback("PlaybackStarted", f"{CALL}-notice-0", T0 + 100))
    assert "originate" not in pbx.names()
    await flow.handle(playback("PlaybackFinished", f"{CALL}-notice-0", T0 + 3100))

    # ringback with the department's MOH class, then the first staff endpoint rings
    assert pbx.called("start_moh") == [{"channel_id": "ch-caller", "moh_class": "lunch"}]
    (orig,) = pbx.called("originate")
    assert orig["endpoint"] == "PJSIP/staff01"
    assert orig["app"] == "callguard" and orig["app_args"] == f"staff,{CALL}"
    assert orig["channel_id"] == STAFF and orig["caller_id"] == CITIZEN
    assert orig["variables"] == {"CALLGUARD_CALL_ID": CALL}

    pbx.clear()
    await flow.handle(stasis_start(STAFF, ["staff", CALL], T0 + 8000, state="Up"))
    assert pbx.names()[:4] == ["stop_moh", "create_bridge", "add_channels", "create_bridge"]
    assert pbx.called("create_bridge")[0] == {
        "bridge_id": f"{CALL}-bridge",
        "bridge_type": "mixing",
    }
    assert pbx.called("add_channels")[0] == {
        "bridge_id": f"{CALL}-bridge",
        "channel_ids": ["ch-caller", STAFF],
    }
    # one audio tap per leg: its own bridge, externalMedia to our port, snoop on the leg
    assert capture.opened == {(CALL, "caller"): 41000, (CALL, "staff"): 41001}
    media = pbx.called("external_media")
    assert [m["external_host"] for m in media] == ["127.0.0.1:41000", "127.0.0.1:41001"]
    assert all(m["fmt"] == "ulaw" and m["app"] == "callguard" for m in media)
    snoops = pbx.called("snoop")
    assert [(s["channel_id"], s["spy"]) for s in snoops] == [("ch-caller", "in"), (STAFF, "in")]
    assert snoops[0]["app_args"] == f"snoop,{CALL},caller"

    # helper channels join their tap bridge when they enter Stasis
    pbx.clear()
    await flow.handle(stasis_start(f"{CALL}-snoop-caller", ["snoop", CALL, "caller"], T0 + 8001))
    await flow.handle(stasis_start(f"{CALL}-media-caller", [], T0 + 8002))
    assert pbx.called("add_channels") == [
        {"bridge_id": f"{CALL}-tap-caller", "channel_ids": [f"{CALL}-snoop-caller"]},
        {"bridge_id": f"{CALL}-tap-caller", "channel_ids": [f"{CALL}-media-caller"]},
    ]

    await flow.handle(dtmf(STAFF, "*", T0 + 20_000))
    await flow.handle(dtmf(STAFF, "9", T0 + 20_250))
    await flow.handle(dtmf("ch-caller", "1", T0 + 21_000))
    await flow.handle(dtmf(f"{CALL}-snoop-caller", "5", T0 + 21_001))  # helper: ignored

    pbx.clear()
    await flow.handle(hangup_request("ch-caller", 16, T0 + 30_000))
    assert {"channel_id": STAFF, "reason": "normal"} in pbx.called("hangup")
    hung = {c["channel_id"] for c in pbx.called("hangup")}
    assert "ch-caller" not in hung  # it hung up itself
    assert {f"{CALL}-snoop-caller", f"{CALL}-media-staff"} <= hung
    destroyed_bridges = {c["bridge_id"] for c in pbx.called("destroy_bridge")}
    assert destroyed_bridges == {f"{CALL}-bridge", f"{CALL}-tap-caller", f"{CALL}-tap-staff"}
    assert sorted(capture.closed) == [(CALL, "caller"), (CALL, "staff")]

    # late events of the ended call change nothing
    before = len(emitter.records)
    await flow.handle(event("StasisEnd", T0 + 30_001, channel={"id": "ch-caller"}))
    await flow.handle(destroyed(STAFF, 16, T0 + 30_002))
    await flow.handle(dtmf(STAFF, "1", T0 + 30_003))
    assert len(emitter.records) == before

    assert emitter.types() == [
        "call_started",
        "notice_started",
        "notice_finished",
        "ringing",
        "answered",
        "bridged",
        "dtmf",
        "dtmf",
        "dtmf",
        "hangup",
    ]
    events = emitter.events()
    assert [e.ts_ms for e in events] == [
        T0,
        T0 + 100,
        T0 + 3100,
        T0 + 3100,
        T0 + 8000,
        T0 + 8000,
        T0 + 20_000,
        T0 + 20_250,
        T0 + 21_000,
        T0 + 30_000,
    ]
    assert len({e.event_id for e in events}) == len(events)
    for e in events:
        assert (e.call_id, e.direction, e.department, e.origin) == (
            CALL,
            "inbound",
            "traffic",
            "asterisk",
        )
        assert (e.caller, e.callee, e.presented_caller_id) == (CITIZEN, "1100", "")
        assert decode(CallEvent, encode(e)) is not None
    assert [(e.leg, e.digit) for e in emitter.of_type("dtmf")] == [
        ("staff", "*"),
        ("staff", "9"),
        ("caller", "1"),
    ]
    assert emitter.of_type("ringing")[0].leg == "staff"
    assert emitter.of_type("answered")[0].leg == "staff"
    assert emitter.of_type("notice_started")[0].attrs == {"notice": "consent-notice"}
    (hangup,) = emitter.of_type("hangup")
    assert (hangup.leg, hangup.hangup_cause, hangup.attrs) == (
        "caller",
        "normal",
        {"hungup_by": "caller"},
    )
    finals = [c for c in emitter.chunks() if c.final]
    assert sorted(c.leg for c in finals) == ["caller", "staff"]
    assert all(decode(AudioChunk, encode(c)).final for c in finals)

    facts = flow.facts(CALL)
    assert facts is not None and facts.disposition == "ANSWERED"
    assert (facts.started_ms, facts.answered_ms, facts.ended_ms) == (T0, T0 + 8000, T0 + 30_000)
    assert flow.sessions == {}


async def test_staff_hanging_up_ends_the_call_and_flushes_audio() -> None:
    flow, pbx, emitter, capture = make_flow()
    await bridged_inbound(flow, pbx)
    pbx.clear()
    await flow.handle(hangup_request(STAFF, 16, T0 + 40_000))
    assert {"channel_id": "ch-caller", "reason": "normal"} in pbx.called("hangup")
    assert STAFF not in {c["channel_id"] for c in pbx.called("hangup")}
    (hangup,) = emitter.of_type("hangup")
    assert hangup.leg == "staff" and hangup.attrs["hungup_by"] == "staff"
    assert sorted(c.leg for c in emitter.chunks() if c.final) == ["caller", "staff"]
    assert len(capture.closed) == 2


async def test_notices_play_one_after_another_before_the_staff_rings() -> None:
    flow, pbx, emitter, _ = make_flow()
    await start_inbound(flow, "1200")  # housing: two notices
    first, second = f"{CALL}-notice-0", f"{CALL}-notice-1"
    assert [c["playback_id"] for c in pbx.called("play_on_channel")] == [first]
    await flow.handle(playback("PlaybackStarted", first))
    await flow.handle(playback("PlaybackFinished", first, T0 + 3000))
    assert [c["playback_id"] for c in pbx.called("play_on_channel")] == [first, second]
    assert pbx.called("play_on_channel")[1]["media"] == f"sound:{SOUNDS}/abuse-warning"
    assert "originate" not in pbx.names() and "start_moh" not in pbx.names()
    await flow.handle(playback("PlaybackStarted", second, T0 + 3001))
    await flow.handle(playback("PlaybackFinished", second, T0 + 6000))
    assert pbx.called("originate")[0]["endpoint"] == "PJSIP/staff03"
    assert emitter.types() == [
        "call_started",
        "notice_started",
        "notice_finished",
        "notice_started",
        "notice_finished",
        "ringing",
    ]
    notices = [e.attrs["notice"] for e in emitter.of_type("notice_finished")]
    assert notices == ["consent-notice", "abuse-warning"]


async def test_department_without_notices_rings_at_once() -> None:
    flow, pbx, emitter, _ = make_flow()
    await start_inbound(flow, "1300")
    assert "play_on_channel" not in pbx.names()
    assert pbx.called("originate")[0]["endpoint"] == "PJSIP/staff05"
    assert emitter.types() == ["call_started", "ringing"]


async def test_failed_notice_still_moves_on() -> None:
    flow, pbx, emitter, _ = make_flow()
    await start_inbound(flow)
    await flow.handle(playback("PlaybackFinished", f"{CALL}-notice-0", T0 + 10, state="failed"))
    (finished,) = emitter.of_type("notice_finished")
    assert finished.attrs == {"notice": "consent-notice", "status": "failed"}
    assert "originate" in pbx.names()


async def test_staff_not_answering_ends_the_call_as_no_answer() -> None:
    flow, pbx, emitter, capture = make_flow(timeout_s=0.05)
    await start_inbound(flow, "1300")
    assert emitter.types() == ["call_started", "ringing"]
    for _ in range(200):  # the timer fires after 0.05 s; allow a slow machine 2 s
        if "hangup" in emitter.types():
            break
        await asyncio.sleep(0.01)
    assert {"channel_id": STAFF, "reason": "no_answer"} in pbx.called("hangup")
    assert {"channel_id": "ch-caller", "reason": "no_answer"} in pbx.called("hangup")
    (hangup,) = emitter.of_type("hangup")
    assert (hangup.hangup_cause, hangup.leg, hangup.attrs) == (
        "no_answer",
        "",
        {"hungup_by": "system"},
    )
    assert "create_bridge" not in pbx.names() and capture.opened == {}
    facts = flow.facts(CALL)
    assert facts is not None and facts.disposition == "NO ANSWER" and facts.answered_ms == 0
    # the staff channel's own teardown events afterwards are ignored
    await flow.handle(destroyed(STAFF, 16))
    assert emitter.types().count("hangup") == 1


async def test_answer_in_time_cancels_the_no_answer_timer() -> None:
    flow, _pbx, emitter, _ = make_flow(timeout_s=0.05)
    await start_inbound(flow, "1300")
    await flow.handle(stasis_start(STAFF, ["staff", CALL], T0 + 20, state="Up"))
    await asyncio.sleep(0.12)
    assert "hangup" not in emitter.types()
    assert emitter.types()[-1] == "bridged"


async def test_busy_staff_phone_ends_the_call_as_busy() -> None:
    flow, pbx, emitter, _ = make_flow()
    await start_inbound(flow, "1300")
    await flow.handle(destroyed(STAFF, 17, T0 + 2000))
    (hangup,) = emitter.of_type("hangup")
    assert (hangup.hangup_cause, hangup.leg) == ("busy", "staff")
    assert {"channel_id": "ch-caller", "reason": "busy"} in pbx.called("hangup")
    facts = flow.facts(CALL)
    assert facts is not None and facts.disposition == "BUSY"


async def test_caller_hanging_up_during_the_notice_stops_everything() -> None:
    flow, pbx, emitter, _ = make_flow()
    await start_inbound(flow)
    await flow.handle(hangup_request("ch-caller", 16, T0 + 1000))
    await flow.handle(playback("PlaybackFinished", f"{CALL}-notice-0", T0 + 1001))
    assert "originate" not in pbx.names()
    assert emitter.types() == ["call_started", "hangup"]
    assert emitter.of_type("hangup")[0].attrs == {"hungup_by": "caller"}
    facts = flow.facts(CALL)
    assert facts is not None and facts.disposition == "NO ANSWER"


async def test_caller_hanging_up_while_ringing_cancels_the_staff_leg() -> None:
    flow, pbx, emitter, _ = make_flow()
    await start_inbound(flow, "1300")
    await flow.handle(hangup_request("ch-caller", 16, T0 + 5000))
    assert {"channel_id": STAFF, "reason": "normal"} in pbx.called("hangup")
    assert emitter.types() == ["call_started", "ringing", "hangup"]


async def test_unknown_line_is_hung_up_without_a_decision() -> None:
    flow, pbx, emitter, _ = make_flow()
    await start_inbound(flow, "1999")
    assert "answer" not in pbx.names() and "play_on_channel" not in pbx.names()
    assert pbx.called("hangup") == [{"channel_id": "ch-caller", "reason": "unallocated"}]
    assert emitter.types() == ["call_started", "hangup"]
    started, hangup = emitter.events()
    assert started.department == "" and started.attrs == {"line": "1999"}
    assert hangup.hangup_cause == "unallocated" and hangup.attrs == {"hungup_by": "system"}


async def test_hold_and_invalid_dtmf() -> None:
    flow, pbx, emitter, _ = make_flow()
    await bridged_inbound(flow, pbx)
    await flow.handle(event("ChannelHold", T0 + 9000, channel={"id": STAFF}))
    await flow.handle(event("ChannelUnhold", T0 + 9500, channel={"id": STAFF}))
    await flow.handle(dtmf("ch-caller", "xx"))
    assert emitter.types()[-2:] == ["hold", "unhold"]
    assert [e.leg for e in emitter.of_type("hold")] == ["staff"]


async def test_staff_channel_answering_after_entering_stasis() -> None:
    flow, _pbx, emitter, _ = make_flow()
    await start_inbound(flow, "1300")
    await flow.handle(stasis_start(STAFF, ["staff", CALL], T0 + 10, state="Ringing"))
    assert "bridged" not in emitter.types()
    await flow.handle(event("ChannelStateChange", T0 + 20, channel={"id": STAFF, "state": "Up"}))
    assert emitter.types()[-2:] == ["answered", "bridged"]


async def test_late_helper_channels_of_an_ended_call_are_hung_up() -> None:
    flow, pbx, _emitter, _ = make_flow()
    await bridged_inbound(flow, pbx)
    await flow.handle(hangup_request("ch-caller"))
    pbx.clear()
    await flow.handle(stasis_start(f"{CALL}-snoop-staff", ["snoop", CALL, "staff"]))
    await flow.handle(stasis_start("stray", ["whatever"]))
    assert pbx.called("hangup") == [
        {"channel_id": f"{CALL}-snoop-staff", "reason": "normal"},
        {"channel_id": "stray", "reason": "normal"},
    ]


async def test_pbx_refusing_the_bridge_ends_the_call_as_failure() -> None:
    from connectors.asterisk.ari import AriError

    flow, pbx, emitter, _ = make_flow()
    await start_inbound(flow, "1300")
    pbx.refuse["add_channels"] = AriError(422, "/bridges/x/addChannel", "not in Stasis")
    await flow.handle(stasis_start(STAFF, ["staff", CALL], T0 + 10, state="Up"))
    (hangup,) = emitter.of_type("hangup")
    assert hangup.hangup_cause == "failure" and hangup.attrs["hungup_by"] == "system"


async def test_pbx_unavailable_while_handling_is_logged_not_raised() -> None:
    flow, pbx, emitter, _ = make_flow()
    pbx.unavailable = True
    await start_inbound(flow)  # must not raise
    assert emitter.types() == []


# -- outbound --------------------------------------------------------------------------------


async def test_outbound_call_from_a_staff_phone() -> None:
    flow, pbx, emitter, capture = make_flow()
    staff_channel = stasis_start(
        "ch-staff", ["outbound", "007"], T0, name="PJSIP/staff03-00000001", number="staff03"
    )
    await flow.handle(staff_channel)
    assert [c["channel_id"] for c in pbx.called("set_variable")] == ["ch-staff", "ch-staff"]
    assert pbx.called("ring") == [{"channel_id": "ch-staff"}]
    (orig,) = pbx.called("originate")
    assert orig["endpoint"] == "PJSIP/caller07"
    assert orig["caller_id"] == '"주택정책과" <02-120-1200>'
    assert orig["app_args"] == f"citizen,{CALL}" and orig["channel_id"] == CITIZEN_LEG
    started, ringing = emitter.events()
    assert (started.direction, started.department) == ("outbound", "housing")
    assert (started.caller, started.callee, started.presented_caller_id) == (
        "02-120-1200",
        "007",
        "02-120-1200",
    )
    assert ringing.leg == "caller"

    await flow.handle(stasis_start(CITIZEN_LEG, ["citizen", CALL], T0 + 4000, state="Up"))
    assert emitter.types()[-1] == "answered" and emitter.of_type("answered")[0].leg == "caller"
    # the citizen hears the notices first; the staff phone is still ringing
    plays = pbx.called("play_on_channel")
    assert [p["channel_id"] for p in plays] == [CITIZEN_LEG]
    assert "create_bridge" not in pbx.names()
    await flow.handle(playback("PlaybackFinished", f"{CALL}-notice-0", T0 + 7000))
    await flow.handle(playback("PlaybackFinished", f"{CALL}-notice-1", T0 + 9000))
    assert {"channel_id": "ch-staff"} in pbx.called("answer")
    assert pbx.called("add_channels")[0]["channel_ids"] == [CITIZEN_LEG, "ch-staff"]
    assert emitter.types()[-1] == "bridged"
    snoops = {s["channel_id"]: s["snoop_id"] for s in pbx.called("snoop")}
    assert snoops == {CITIZEN_LEG: f"{CALL}-snoop-caller", "ch-staff": f"{CALL}-snoop-staff"}

    await flow.handle(hangup_request(CITIZEN_LEG, 16, T0 + 60_000))
    (hangup,) = emitter.of_type("hangup")
    assert hangup.leg == "caller" and hangup.attrs["hungup_by"] == "caller"
    assert {"channel_id": "ch-staff", "reason": "normal"} in pbx.called("hangup")
    assert len(capture.closed) == 2


async def test_outbound_to_an_unreachable_number() -> None:
    flow, pbx, emitter, _ = make_flow()
    await flow.handle(
        stasis_start("ch-staff", ["outbound", "12345"], name="PJSIP/staff01-00000002")
    )
    assert "originate" not in pbx.names()
    assert emitter.types() == ["call_started", "hangup"]
    assert emitter.of_type("hangup")[0].hangup_cause == "unallocated"


async def test_outbound_from_a_phone_of_no_department() -> None:
    flow, pbx, emitter, _ = make_flow()
    await flow.handle(stasis_start("ch-x", ["outbound", "007"], name="PJSIP/staff16-00000003"))
    assert emitter.events()[0].department == ""
    assert pbx.called("hangup") == [{"channel_id": "ch-x", "reason": "unallocated"}]


# -- connection housekeeping -----------------------------------------------------------------


async def test_reconcile_ends_calls_whose_channels_vanished() -> None:
    flow, pbx, emitter, _ = make_flow()
    await bridged_inbound(flow, pbx)
    assert await flow.reconcile(["ch-caller", STAFF]) == 0
    assert await flow.reconcile([STAFF]) == 1
    (hangup,) = emitter.of_type("hangup")
    assert hangup.attrs == {"hungup_by": "caller", "reconciled": "true"}


async def test_shutdown_flushes_audio_but_leaves_calls_up() -> None:
    flow, pbx, emitter, capture = make_flow()
    await bridged_inbound(flow, pbx)
    pbx.clear()
    await flow.shutdown()
    assert "hangup" not in pbx.names()
    assert len(capture.closed) == 2 and "hangup" not in emitter.types()


# -- small pure helpers ----------------------------------------------------------------------


def test_number_to_endpoint_for_the_development_pbx() -> None:
    assert number_to_endpoint("007") == "PJSIP/caller07"
    assert number_to_endpoint(" 016 ") == "PJSIP/caller16"
    for number in ("000", "07", "0007", "107", "", "0a1"):
        assert number_to_endpoint(number) is None


def test_channel_names_and_dial_strings() -> None:
    assert endpoint_of_channel("PJSIP/staff01-0000002a") == "staff01"
    assert endpoint_of_channel("PJSIP/staff-east-01-0000002a") == "staff-east-01"
    assert dial_string("staff01") == "PJSIP/staff01"
    assert dial_string("PJSIP/x@trunk") == "PJSIP/x@trunk"


def test_media_names_and_uris() -> None:
    assert media_uri("abuse-warning", "/s/") == "sound:/s/abuse-warning"
    assert media_uri("tone:ring") == "tone:ring"
    assert media_uri("sound:hello-world") == "sound:hello-world"
    for bad in ("../../etc/passwd", "a b", "file:/etc/passwd", "sound:../x", ""):
        with pytest.raises(CommandRejected):
            media_uri(bad)


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (16, "normal"),
        ("17", "busy"),
        (19, "no_answer"),
        (18, "no_answer"),
        (21, "rejected"),
        (34, "congestion"),
        (1, "unallocated"),
        (None, "normal"),
        (99, "cause_99"),
        ("x", "normal"),
    ],
)
def test_hangup_cause_mapping(code: object, cause: str) -> None:
    assert hangup_cause(code) == cause
