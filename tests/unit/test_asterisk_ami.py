"""AMI: parsing the wire, the client against a fake manager, and Cdr events → Cdr records."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.asterisk.ami import (
    AmiAuthError,
    AmiClient,
    AmiParser,
    cdr_to_record,
    format_action,
    parse_block,
)
from connectors.asterisk.cdr import (
    CdrCollector,
    CdrTag,
    enrich_cdr,
    merge_cdrs,
    normalise_disposition,
    parse_cdr_tag,
    parse_cdr_time,
)
from connectors.asterisk.model import CallFacts
from schemas.codec import decode, encode
from schemas.records import Cdr

CALL = "call-0123456789abcdef0123456789abcdef"
TAG = CdrTag(CALL, "inbound", "traffic", "010-0000-1234", "1100", "").encode()


def ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000)


def cdr_block(**overrides: str) -> bytes:
    """A Cdr event as Asterisk 22's cdr_manager writes it (CRLF lines, blank line at the end)."""
    fields = {
        "Event": "Cdr",
        "Privilege": "cdr,all",
        "AccountCode": "",
        "Source": "010-0000-1234",
        "Destination": "1100",
        "DestinationContext": "from-citizen",
        "CallerID": '"Citizen" <010-0000-1234>',
        "Channel": "PJSIP/caller01-00000004",
        "DestinationChannel": "PJSIP/staff01-00000005",
        "LastApplication": "Stasis",
        "LastData": "callguard,inbound,1100",
        "StartTime": "2026-11-03 10:15:02",
        "AnswerTime": "2026-11-03 10:15:03",
        "EndTime": "2026-11-03 10:16:40",
        "Duration": "98",
        "BillableSeconds": "97",
        "Disposition": "ANSWERED",
        "AMAFlags": "DOCUMENTATION",
        "UniqueID": "1793700902.8",
        "UserField": TAG,
    }
    fields.update(overrides)
    return "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n"


# -- the wire ------------------------------------------------------------------------------


def test_parser_handles_banner_split_reads_and_several_blocks() -> None:
    stream = (
        b"Asterisk Call Manager/10.0.0\r\n"
        + b"Response: Success\r\nActionID: callguard-1\r\nMessage: Authentication accepted\r\n\r\n"
        + cdr_block()
        + b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
    )
    parser = AmiParser()
    messages = []
    for i in range(0, len(stream), 7):  # TCP may cut anywhere, even inside "\r\n"
        messages += parser.feed(stream[i : i + 7])
    assert parser.banner == "Asterisk Call Manager/10.0.0"
    assert [m.get("Event", m.get("Response")) for m in messages] == [
        "Success",
        "Cdr",
        "FullyBooted",
    ]
    cdr = messages[1]
    assert cdr["AccountCode"] == "" and cdr["CallerID"] == '"Citizen" <010-0000-1234>'
    assert cdr["UserField"] == TAG and cdr["LastData"] == "callguard,inbound,1100"


def test_parse_block_multiline_output_and_repeated_keys() -> None:
    block = (
        "Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\n"
        "Channel              Location             State   Application(Data)\r\n"
        "2 active channels\r\n--END COMMAND--\r\n"
        "ChanVariable: A=1\r\nChanVariable: B=2\r\n"
    )
    message = parse_block(block)
    assert message["Response"] == "Follows" and message["ActionID"] == "7"
    assert message["Output"].splitlines() == [
        "Channel              Location             State   Application(Data)",
        "2 active channels",
    ]
    assert message["ChanVariable"] == "A=1\nB=2"


def test_format_action_refuses_line_breaks() -> None:
    assert format_action({"Action": "Ping"}) == b"Action: Ping\r\n\r\n"
    with pytest.raises(ValueError):
        format_action({"Action": "Login", "Secret": "x\r\nAction: Originate"})


# -- Cdr mapping ---------------------------------------------------------------------------


def test_realistic_answered_cdr() -> None:
    (event,) = AmiParser().feed(b"Asterisk Call Manager/10.0.0\r\n" + cdr_block())
    cdr = cdr_to_record(event, tz=UTC)
    assert cdr is not None
    assert (cdr.call_id, cdr.direction, cdr.department) == (CALL, "inbound", "traffic")
    assert (cdr.caller, cdr.callee, cdr.presented_caller_id) == ("010-0000-1234", "1100", "")
    assert cdr.start_ms == ms("2026-11-03 10:15:02")
    assert cdr.answer_ms == ms("2026-11-03 10:15:03")
    assert cdr.end_ms == ms("2026-11-03 10:16:40")
    assert (cdr.duration_s, cdr.billsec_s, cdr.disposition) == (98.0, 97.0, "ANSWERED")
    assert cdr.origin == "asterisk" and cdr.hangup_cause == ""
    assert decode(Cdr, encode(cdr)) is not None


def test_unanswered_cdr_has_no_answer_time() -> None:
    event = parse_block(
        cdr_block(Disposition="NO ANSWER", AnswerTime="", BillableSeconds="0").decode()
    )
    cdr = cdr_to_record(event, tz=UTC)
    assert cdr is not None
    assert (cdr.disposition, cdr.answer_ms, cdr.billsec_s) == ("NO ANSWER", 0, 0.0)


def test_cdr_times_in_the_pbx_time_zone() -> None:
    seoul = timezone(timedelta(hours=9))
    cdr = cdr_to_record(parse_block(cdr_block().decode()), tz=seoul)
    assert cdr is not None and cdr.start_ms == ms("2026-11-03 01:15:02")


def test_optional_hangup_cause_mapping_and_party_b_userfield() -> None:
    event = parse_block(cdr_block(HangupCause="17", UserField=f"{TAG};other").decode())
    cdr = cdr_to_record(event, tz=UTC)
    assert cdr is not None and cdr.hangup_cause == "busy" and cdr.call_id == CALL
    both = parse_block(cdr_block(UserField=f"something;{TAG}").decode())
    assert cdr_to_record(both, tz=UTC) is not None


@pytest.mark.parametrize(
    "overrides",
    [
        {"UserField": ""},  # snoop / externalMedia helper channels, foreign calls
        {"UserField": "cg1:call_id=&dir=inbound"},
        {"UserField": "cg1:call_id=x&dir=sideways"},
        {"Event": "Newchannel"},
        {"StartTime": "3 Nov 2026", "EndTime": "later"},
    ],
)
def test_cdrs_that_are_not_ours_or_unreadable_map_to_none(overrides: dict[str, str]) -> None:
    assert cdr_to_record(parse_block(cdr_block(**overrides).decode()), tz=UTC) is None


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("ANSWERED", "ANSWERED"),
        ("answered", "ANSWERED"),
        ("NO ANSWER", "NO ANSWER"),
        ("NO  ANSWER", "NO ANSWER"),
        ("NOANSWER", "NO ANSWER"),
        ("BUSY", "BUSY"),
        ("CONGESTION", "CONGESTION"),
        ("FAILED", "FAILED"),
        ("", "FAILED"),
        ("WEIRD", "FAILED"),
    ],
)
def test_dispositions_are_normalised(raw: str, normal: str) -> None:
    assert normalise_disposition(raw) == normal


def test_tag_round_trip_with_awkward_characters() -> None:
    tag = CdrTag(CALL, "outbound", "housing", "02-120-1200", "0;07&x=y", '"주택" <1>')
    assert parse_cdr_tag(tag.encode()) == tag
    assert ";" not in tag.encode()  # Asterisk joins party A and B userfields with ";"
    long = CdrTag(CALL, "inbound", "traffic", "9" * 200, "1100", "")
    encoded = long.encode()
    assert len(encoded) <= 255 and parse_cdr_tag(encoded).call_id == CALL


def test_cdr_time_parsing() -> None:
    assert parse_cdr_time("", UTC) == 0
    assert parse_cdr_time("2026-11-03 10:15:02.250000", UTC) == ms("2026-11-03 10:15:02") + 250
    with pytest.raises(ValueError):
        parse_cdr_time("03/11/2026", UTC)


# -- merging and enrichment ------------------------------------------------------------------


def _cdr(**kw: object) -> Cdr:
    cdr = cdr_to_record(parse_block(cdr_block().decode()), tz=UTC)
    assert cdr is not None
    data = cdr.asdict()
    data.update(kw)
    return Cdr(**data)


def test_merge_keeps_the_widest_span_and_strongest_disposition() -> None:
    a = _cdr(disposition="NO ANSWER", answer_ms=0, billsec_s=0.0, end_ms=ms("2026-11-03 10:15:10"))
    b = _cdr(start_ms=ms("2026-11-03 10:15:05"))
    merged = merge_cdrs(a, b)
    assert merged.start_ms == a.start_ms and merged.end_ms == b.end_ms
    assert merged.disposition == "ANSWERED" and merged.answer_ms == b.answer_ms
    assert merged.billsec_s == 97.0


def test_enrich_replaces_the_pbx_view_of_answering() -> None:
    pbx_cdr = _cdr()  # Asterisk: ANSWERED when the connector answered for the notice
    start = pbx_cdr.start_ms
    facts = CallFacts(
        CALL,
        "inbound",
        "traffic",
        "010-0000-1234",
        "1100",
        "",
        start + 400,
        0,
        start + 30_500,
        "no_answer",
        "NO ANSWER",
    )
    cdr = enrich_cdr(pbx_cdr, facts)
    assert (cdr.disposition, cdr.answer_ms, cdr.billsec_s) == ("NO ANSWER", 0, 0.0)
    assert cdr.end_ms == start + 30_500 and cdr.duration_s == 30.5
    assert cdr.hangup_cause == "no_answer"
    answered = CallFacts(
        CALL,
        "inbound",
        "traffic",
        "010-0000-1234",
        "1100",
        "",
        start + 400,
        start + 8_250,
        start + 60_000,
        "normal",
        "ANSWERED",
    )
    cdr = enrich_cdr(pbx_cdr, answered)
    assert (cdr.answer_ms, cdr.billsec_s, cdr.disposition) == (start + 8_250, 51.75, "ANSWERED")
    assert enrich_cdr(pbx_cdr, None) is pbx_cdr
    assert decode(Cdr, encode(cdr)) is not None


def test_collector_waits_merges_and_re_emits_stragglers() -> None:
    collector = CdrCollector(grace_ms=2000)
    facts: dict[str, CallFacts] = {}
    first = _cdr(disposition="NO ANSWER", answer_ms=0, billsec_s=0.0)
    collector.add(first, 10_000)
    assert collector.due(11_999, facts.get) == []
    collector.add(_cdr(), 11_000)  # the same call's second CDR restarts the grace period
    assert collector.due(12_999, facts.get) == []
    (out,) = collector.due(13_000, facts.get)
    assert out.disposition == "ANSWERED" and len(collector) == 0
    late = _cdr(end_ms=ms("2026-11-03 10:20:00"))
    collector.add(late, 50_000)
    (again,) = collector.drain(facts.get)
    assert again.end_ms == late.end_ms and again.disposition == "ANSWERED"


# -- the client against a fake manager -------------------------------------------------------


class FakeManager:
    """A tiny AMI server: checks the login, then sends the given blocks and closes."""

    def __init__(self, blocks: list[bytes], secret: str = "callguard-ami") -> None:
        self.blocks = blocks
        self.secret = secret
        self.logins: list[dict[str, str]] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"Asterisk Call Manager/10.0.0\r\n")
        parser = AmiParser()
        parser.banner = ""  # the client sends no banner
        login: dict[str, str] = {}
        while not login:
            data = await reader.read(1024)
            if not data:
                return
            for message in parser.feed(data):
                login = message
        self.logins.append(login)
        ok = login.get("Secret") == self.secret
        writer.write(
            format_action(
                {
                    "Response": "Success" if ok else "Error",
                    "ActionID": login["ActionID"],
                    "Message": "Authentication accepted" if ok else "Authentication failed",
                }
            )
        )
        if ok:
            for block in self.blocks:
                writer.write(block)
        await writer.drain()
        writer.close()


async def test_client_logs_in_yields_events_and_reconnects() -> None:
    manager = FakeManager([cdr_block(), b"Event: Newchannel\r\nChannel: x\r\n\r\n"])
    server = await asyncio.start_server(manager.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AmiClient("127.0.0.1", port, "callguard", "callguard-ami", min_backoff_s=0.01)
    seen: list[str] = []
    events = client.events()
    try:
        async with asyncio.timeout(5):
            async for message in events:
                seen.append(message["Event"])
                if len(seen) == 4:
                    break
    finally:
        await events.aclose()
        server.close()
        await server.wait_closed()
    assert seen == ["Cdr", "Newchannel", "Cdr", "Newchannel"]  # second round: reconnected
    assert manager.connections >= 2
    login = manager.logins[0]
    assert (login["Action"], login["Username"], login["Events"]) == ("Login", "callguard", "cdr")


async def test_client_stops_on_a_refused_login() -> None:
    manager = FakeManager([], secret="something-else")
    server = await asyncio.start_server(manager.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AmiClient("127.0.0.1", port, "callguard", "wrong", min_backoff_s=0.01)
    try:
        with pytest.raises(AmiAuthError):
            async with asyncio.timeout(5):
                async for _ in client.events():
                    pass
    finally:
        server.close()
        await server.wait_closed()


async def test_client_retries_while_the_manager_is_down() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens on the port now
    client = AmiClient("127.0.0.1", port, "u", "p", min_backoff_s=0.01, max_backoff_s=0.02)
    events = client.events()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await events.__anext__()
    await events.aclose()


def test_enrich_distrusts_a_cdr_start_hours_away() -> None:
    pbx_cdr = _cdr()
    wrong_zone = pbx_cdr.start_ms - 9 * 3600 * 1000  # PBX wrote UTC, read as +09:00
    skewed = _cdr(start_ms=wrong_zone)
    start = pbx_cdr.start_ms
    facts = CallFacts(
        CALL,
        "inbound",
        "traffic",
        "c",
        "1100",
        "",
        start + 300,
        0,
        start + 9_300,
        "normal",
        "NO ANSWER",
    )
    cdr = enrich_cdr(skewed, facts)
    assert cdr.start_ms == start + 300 and cdr.duration_s == 9.0
    assert enrich_cdr(pbx_cdr, facts).start_ms == start  # close: the PBX's earlier start
