"""Applying pbx.commands: each action, idempotency across restarts, unknown calls, PBX outages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connectors.asterisk.ari import AriError, PbxUnavailable
from connectors.asterisk.commands import CommandApplier, CommandStore
from schemas.codec import decode, encode
from schemas.records import CommandResult, PbxCommand
from tests.unit.test_asterisk_callflow import CALL, STAFF, bridged_inbound, start_inbound
from tests.unit.test_asterisk_fakes import SOUNDS, T0, Clock, make_flow, playback, stasis_start


def command(action: str, call_id: str = CALL, command_id: str = "cmd-1", **args: str) -> PbxCommand:
    return PbxCommand(
        command_id=command_id,
        call_id=call_id,
        action=action,
        issued_ms=T0,
        issued_by="test",
        reason="because",
        args=args,
    )


@pytest.fixture
def store(tmp_path: Path):
    s = CommandStore(tmp_path / "commands.sqlite")
    yield s
    s.close()


def applier_for(flow, store: CommandStore, **kw) -> CommandApplier:
    return CommandApplier(flow, store, now_ms=Clock(T0 + 50_000), **kw)


def assert_valid(result: CommandResult) -> None:
    assert decode(CommandResult, encode(result)).status == result.status


async def test_play_to_the_whole_call_uses_the_bridge() -> None:
    flow, pbx, emitter, _ = make_flow()
    await bridged_inbound(flow, pbx)
    applier = applier_for(flow, CommandStore(":memory:"))
    result = await applier.apply(command("play", media="abuse-warning", target="call"))
    assert (result.status, result.action, result.call_id) == ("applied", "play", CALL)
    assert_valid(result)
    assert pbx.called("play_on_bridge") == [
        {
            "bridge_id": f"{CALL}-bridge",
            "media": f"sound:{SOUNDS}/abuse-warning",
            "playback_id": "cmd-1",
        }
    ]
    await flow.handle(playback("PlaybackStarted", "cmd-1", T0 + 50_010))
    await flow.handle(playback("PlaybackFinished", "cmd-1", T0 + 55_000))
    started, finished = emitter.of_type("playback_started"), emitter.of_type("playback_finished")
    assert started[0].attrs == {"media": "abuse-warning", "target": "call", "command_id": "cmd-1"}
    assert finished[0].ts_ms == T0 + 55_000 and finished[0].leg == ""


async def test_play_to_one_leg_uses_its_channel() -> None:
    flow, pbx, emitter, _ = make_flow()
    await bridged_inbound(flow, pbx)
    applier = applier_for(flow, CommandStore(":memory:"))
    result = await applier.apply(command("play", media="abuse-warning", target="caller"))
    assert result.status == "applied"
    assert pbx.called("play_on_channel")[-1]["channel_id"] == "ch-caller"
    await flow.handle(playback("PlaybackStarted", "cmd-1"))
    assert emitter.of_type("playback_started")[0].leg == "caller"


async def test_play_with_wait_answers_after_the_playback_finished() -> None:
    flow, pbx, _, _ = make_flow()
    await bridged_inbound(flow, pbx)
    applier = applier_for(flow, CommandStore(":memory:"))
    task = asyncio.create_task(
        applier.apply(command("play", media="abuse-termination", target="call", wait="true"))
    )
    await asyncio.sleep(0.02)
    assert not task.done() and pbx.called("play_on_bridge")
    await flow.handle(playback("PlaybackFinished", "cmd-1", T0 + 60_000))
    result = await asyncio.wait_for(task, 1)
    assert (result.status, result.detail) == ("applied", "played abuse-termination")


async def test_play_with_wait_fails_when_the_call_ends_first() -> None:
    flow, pbx, _, _ = make_flow()
    await bridged_inbound(flow, pbx)
    applier = applier_for(flow, CommandStore(":memory:"))
    task = asyncio.create_task(applier.apply(command("play", media="x", wait="yes")))
    await asyncio.sleep(0.02)
    from tests.unit.test_asterisk_fakes import hangup_request

    await flow.handle(hangup_request("ch-caller"))
    result = await asyncio.wait_for(task, 1)
    assert result.status == "failed" and "call ended" in result.detail


async def test_hangup_command_ends_both_legs_once(store: CommandStore) -> None:
    flow, pbx, emitter, capture = make_flow()
    await bridged_inbound(flow, pbx)
    applier = applier_for(flow, store)
    cmd = command("hangup", command_id="cmd-hangup", cause="abuse")
    result = await applier.apply(cmd)
    assert result.status == "applied"
    hung = {c["channel_id"] for c in pbx.called("hangup")}
    assert {"ch-caller", STAFF} <= hung
    (hangup,) = emitter.of_type("hangup")
    assert hangup.hangup_cause == "abuse"
    assert hangup.attrs == {"hungup_by": "system", "command_id": "cmd-hangup"}
    assert len(capture.closed) == 2

    # the same command again: duplicate, the PBX is not touched
    pbx.clear()
    again = await applier.apply(cmd)
    assert (again.status, again.detail) == ("duplicate", "already applied")
    assert pbx.calls == []
    # a new hangup for the ended call: failed, not active
    late = await applier.apply(command("hangup", command_id="cmd-late"))
    assert (late.status, late.detail) == ("failed", "call not active")


async def test_idempotency_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "commands.sqlite"
    flow, pbx, _, _ = make_flow()
    await bridged_inbound(flow, pbx)
    first = CommandStore(path)
    result = await applier_for(flow, first).apply(command("start_recording", command_id="rec-1"))
    assert result.status == "applied"
    first.close()

    # a new process: fresh flow and PBX, the store file reopened
    flow2, pbx2, _, _ = make_flow()
    await bridged_inbound(flow2, pbx2)
    pbx2.clear()
    reopened = CommandStore(path)
    try:
        again = await applier_for(flow2, reopened).apply(
            command("start_recording", command_id="rec-1")
        )
        assert again.status == "duplicate" and pbx2.calls == []
        assert reopened.get("rec-1") is not None and reopened.get("rec-1").status == "applied"
    finally:
        reopened.close()


async def test_unknown_call_fails(store: CommandStore) -> None:
    flow, pbx, _, _ = make_flow()
    result = await applier_for(flow, store).apply(command("play", call_id="call-nope", media="x"))
    assert (result.status, result.detail) == ("failed", "unknown call")
    assert pbx.calls == []
    assert store.get("cmd-1").status == "failed"  # a replay answers duplicate


async def test_pbx_unreachable_is_retryable_and_leaves_no_trace(store: CommandStore) -> None:
    flow, pbx, _emitter, _ = make_flow()
    await bridged_inbound(flow, pbx)
    applier = applier_for(flow, store)
    pbx.unavailable = True
    with pytest.raises(PbxUnavailable):
        await applier.apply(command("hangup", command_id="cmd-h"))
    assert store.get("cmd-h") is None
    pbx.unavailable = False
    # the call is still known: the retry after the PBX is back does the work
    result = await applier.apply(command("hangup", command_id="cmd-h"))
    assert result.status == "applied"


async def test_pbx_refusal_is_a_failed_command(store: CommandStore) -> None:
    flow, pbx, _, _ = make_flow()
    await bridged_inbound(flow, pbx)
    pbx.refuse["play_on_bridge"] = AriError(404, "/bridges/x/play/cmd-1", "Bridge not found")
    result = await applier_for(flow, store).apply(command("play", media="abuse-warning"))
    assert result.status == "failed" and "404" in result.detail


@pytest.mark.parametrize(
    ("action", "args", "reason"),
    [
        ("play", {}, "media"),
        ("play", {"media": "x", "target": "everyone"}, "target"),
        ("play", {"media": "../../etc/passwd"}, "sound name"),
        ("set_ringback", {}, "moh_class"),
        ("set_ringback", {"moh_class": "a;b"}, "moh_class"),
        ("originate", {}, "endpoint"),
        ("originate", {"endpoint": "12345", "staff_endpoint": "staff01"}, "endpoint"),
        ("originate", {"endpoint": "007"}, "staff endpoint"),
        ("originate", {"endpoint": "007", "department": "nope"}, "department"),
    ],
)
async def test_unusable_arguments_are_rejected(
    store: CommandStore, action: str, args: dict[str, str], reason: str
) -> None:
    flow, pbx, _, _ = make_flow()
    await bridged_inbound(flow, pbx)
    pbx.clear()
    cmd = command(action, call_id=CALL if action != "originate" else "call-new", **args)
    result = await applier_for(flow, store).apply(cmd)
    assert result.status == "rejected", result.detail
    assert reason in result.detail
    assert [n for n in pbx.names() if n not in ("set_variable",)] == []
    assert_valid(result)


async def test_set_ringback_while_ringing_switches_the_music(store: CommandStore) -> None:
    flow, pbx, _, _ = make_flow()
    await start_inbound(flow, "1300")
    pbx.clear()
    result = await applier_for(flow, store).apply(command("set_ringback", moh_class="holiday"))
    assert (result.status, result.detail) == ("applied", "ringback changed")
    assert pbx.names() == ["stop_moh", "start_moh"]
    assert pbx.called("start_moh") == [{"channel_id": "ch-caller", "moh_class": "holiday"}]
    tone = await applier_for(flow, store).apply(
        command("set_ringback", command_id="cmd-2", tone="ring")
    )
    assert tone.status == "applied" and pbx.names()[-1] == "ring"


async def test_set_ringback_before_ringing_is_used_later(store: CommandStore) -> None:
    flow, pbx, _, _ = make_flow()
    await start_inbound(flow, "1100")  # notice playing, nothing ringing yet
    result = await applier_for(flow, store).apply(command("set_ringback", moh_class="after_hours"))
    assert (result.status, result.detail) == ("applied", "ringback set for this call")
    await flow.handle(playback("PlaybackFinished", f"{CALL}-notice-0"))
    assert pbx.called("start_moh") == [{"channel_id": "ch-caller", "moh_class": "after_hours"}]


async def test_recording_start_and_stop(store: CommandStore) -> None:
    flow, pbx, emitter, _ = make_flow()
    applier = applier_for(flow, store)
    await start_inbound(flow, "1300")
    early = await applier.apply(command("start_recording", command_id="r0"))
    assert (early.status, early.detail) == ("failed", "call not bridged")
    await flow.handle(stasis_start(STAFF, ["staff", CALL], T0 + 10, state="Up"))

    started = await applier.apply(command("start_recording", command_id="r1"))
    assert started.status == "applied"
    assert pbx.called("record_bridge") == [
        {"bridge_id": f"{CALL}-bridge", "name": CALL, "fmt": "wav", "if_exists": "overwrite"}
    ]
    twice = await applier.apply(command("start_recording", command_id="r2"))
    assert (twice.status, twice.detail) == ("failed", "already recording")
    stopped = await applier.apply(command("stop_recording", command_id="r3"))
    assert stopped.status == "applied" and pbx.called("stop_recording") == [{"name": CALL}]
    again = await applier.apply(command("stop_recording", command_id="r4"))
    assert (again.status, again.detail) == ("failed", "not recording")
    assert emitter.types()[-2:] == ["recording_started", "recording_stopped"]
    assert emitter.of_type("recording_started")[0].attrs == {"name": CALL, "command_id": "r1"}


async def test_recording_is_reported_stopped_at_hangup(store: CommandStore) -> None:
    flow, pbx, emitter, _ = make_flow()
    await bridged_inbound(flow, pbx)
    await applier_for(flow, store).apply(command("start_recording"))
    from tests.unit.test_asterisk_fakes import hangup_request

    await flow.handle(hangup_request(STAFF))
    assert emitter.types()[-2:] == ["hangup", "recording_stopped"]
    assert emitter.of_type("recording_stopped")[0].attrs["reason"] == "hangup"


async def test_originate_rings_staff_then_citizen(store: CommandStore) -> None:
    flow, pbx, emitter, capture = make_flow()
    new_call = "call-click-to-call-1"
    cmd = command(
        "originate",
        call_id=new_call,
        command_id="orig-1",
        endpoint="016",
        caller_id_number="02-120-1100",
        caller_id_name="교통과",
    )
    result = await applier_for(flow, store).apply(cmd)
    assert result.status == "applied", result.detail
    (staff_orig,) = pbx.called("originate")
    assert staff_orig["endpoint"] == "PJSIP/staff01"  # traffic: found by its office number
    assert staff_orig["app_args"] == f"staff,{new_call}"
    assert staff_orig["variables"]["CALLGUARD_CALL_ID"] == new_call
    assert staff_orig["variables"]["CDR(userfield)"].startswith("cg1:")
    assert emitter.types() == ["call_started", "ringing"]
    assert emitter.events()[0].attrs == {"originated_by": "command"}

    await flow.handle(stasis_start(f"{new_call}-staff", ["staff", new_call], T0 + 3000, state="Up"))
    assert pbx.called("start_moh") == [{"channel_id": f"{new_call}-staff", "moh_class": "lunch"}]
    citizen_orig = pbx.called("originate")[1]
    assert citizen_orig["endpoint"] == "PJSIP/caller16"
    assert citizen_orig["caller_id"] == '"교통과" <02-120-1100>'
    citizen = f"{new_call}-citizen"
    await flow.handle(stasis_start(citizen, ["citizen", new_call], T0 + 9000, state="Up"))
    await flow.handle(playback("PlaybackFinished", f"{new_call}-notice-0", T0 + 12_000))
    assert emitter.types() == [
        "call_started",
        "ringing",
        "ringing",
        "answered",
        "notice_finished",
        "bridged",
    ]
    assert {e.direction for e in emitter.events()} == {"outbound"}
    assert capture.opened.keys() == {(new_call, "caller"), (new_call, "staff")}

    dup = await applier_for(flow, store).apply(cmd)
    assert dup.status == "duplicate"
    reused = await applier_for(flow, store).apply(
        command(
            "originate",
            call_id=new_call,
            command_id="orig-2",
            endpoint="PJSIP/caller02",
            staff_endpoint="staff02",
        )
    )
    assert (reused.status, reused.detail) == ("failed", "call id already in use")


async def test_expired_commands_are_not_applied(store: CommandStore) -> None:
    flow, pbx, _, _ = make_flow()
    await bridged_inbound(flow, pbx)
    pbx.clear()
    applier = CommandApplier(flow, store, now_ms=Clock(T0 + 3_600_000), max_age_s=600)
    result = await applier.apply(command("hangup"))
    assert result.status == "failed" and "expired" in result.detail
    assert pbx.calls == []


def test_store_prunes_old_outcomes(tmp_path: Path) -> None:
    store = CommandStore(tmp_path / "s.sqlite")
    store.record("old", "applied", "", 1_000)
    store.record("new", "applied", "", 5_000)
    store.record("new", "failed", "ignored: first outcome wins", 6_000)
    assert store.prune(2_000) == 1
    assert store.get("old") is None and store.get("new").status == "applied"
    store.close()


async def test_originate_while_the_pbx_is_down_can_be_retried(store: CommandStore) -> None:
    flow, pbx, emitter, _ = make_flow()
    applier = applier_for(flow, store)
    cmd = command(
        "originate", call_id="call-cb", endpoint="PJSIP/caller03", staff_endpoint="staff05"
    )
    pbx.unavailable = True
    with pytest.raises(PbxUnavailable):
        await applier.apply(cmd)
    assert emitter.records == [] and flow.sessions == {} and store.get("cmd-1") is None
    pbx.unavailable = False
    result = await applier.apply(cmd)
    assert result.status == "applied"
    assert emitter.events()[0].department == "welfare"  # found by the staff endpoint


async def test_originate_refused_by_the_pbx_fails_without_events(store: CommandStore) -> None:
    flow, pbx, emitter, _ = make_flow()
    pbx.refuse["originate"] = AriError(400, "/channels/x", "Allocation failed")
    cmd = command(
        "originate", call_id="call-cb", endpoint="PJSIP/caller03", staff_endpoint="staff05"
    )
    result = await applier_for(flow, store).apply(cmd)
    assert result.status == "failed" and "400" in result.detail
    assert emitter.records == [] and flow.sessions == {}
