"""A minimal Asterisk Manager Interface client: log in, read events as dicts, reconnect.

CallGuard reads only ``Cdr`` events from AMI (``cdr_manager``); everything else goes through
ARI.  AMI is a line protocol: after a one-line banner, messages are blocks of ``Key: Value``
lines ending with an empty line (``\\r\\n\\r\\n``).  :class:`AmiParser` is pure and incremental
(TCP may split a block anywhere), so tests feed it bytes without a socket.

The mapping of a ``Cdr`` event to the wire record lives in :mod:`connectors.asterisk.cdr`
and is re-exported here as :func:`cdr_to_record`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Mapping

from connectors.asterisk.cdr import cdr_to_record

__all__ = [
    "AmiAuthError",
    "AmiClient",
    "AmiParser",
    "cdr_to_record",
    "format_action",
    "parse_block",
]

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_\-()]+$")
#: key under which lines that are not ``Key: Value`` (command output) are collected
OUTPUT_KEY = "Output"


class AmiAuthError(RuntimeError):
    """Asterisk rejected the login (a configuration error: retrying will not fix it)."""


def format_action(fields: Mapping[str, str]) -> bytes:
    """``{"Action": "Login", ...}`` → the wire block; refuses values that would break framing."""
    lines = []
    for key, value in fields.items():
        if "\r" in value or "\n" in value or "\r" in key or "\n" in key:
            raise ValueError(f"AMI field {key!r} contains a line break")
        lines.append(f"{key}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


def parse_block(text: str) -> dict[str, str]:
    """One message block → dict.  Repeated keys are joined with newlines, in order; lines that
    are not ``Key: Value`` (``Response: Follows`` command output) collect under ``Output``."""
    message: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line or line == "--END COMMAND--":
            continue
        key, sep, value = line.partition(":")
        if sep and _KEY.match(key):
            key, value = key, value[1:] if value.startswith(" ") else value
        else:
            key, value = OUTPUT_KEY, line
        message[key] = f"{message[key]}\n{value}" if key in message else value
    return message


class AmiParser:
    """Bytes from the AMI socket → complete messages (dicts), however the reads are split."""

    def __init__(self) -> None:
        self._buffer = b""
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[dict[str, str]]:
        self._buffer = (self._buffer + data).replace(b"\r\n", b"\n")
        if self.banner is None:
            line, sep, rest = self._buffer.partition(b"\n")
            if not sep:
                return []
            if line.startswith(b"Asterisk Call Manager"):
                self.banner = line.decode("utf-8", "replace")
                self._buffer = rest
            else:
                self.banner = ""  # no banner (a proxy?): parse from the first byte
        out: list[dict[str, str]] = []
        while True:
            block, sep, rest = self._buffer.partition(b"\n\n")
            if not sep:
                break
            self._buffer = rest
            message = parse_block(block.decode("utf-8", "replace"))
            if message:
                out.append(message)
        return out


class AmiClient:
    """Logs in with an event mask and yields events forever, reconnecting with backoff."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        event_mask: str = "cdr",
        connect_timeout_s: float = 5.0,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.secret = secret
        self.event_mask = event_mask
        self.connect_timeout_s = connect_timeout_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self._action_seq = 0

    def _action_id(self) -> str:
        self._action_seq += 1
        return f"callguard-{self._action_seq}"

    async def _login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: AmiParser
    ) -> list[dict[str, str]]:
        """Send Login and wait for its response; return events that arrived meanwhile."""
        action_id = self._action_id()
        writer.write(
            format_action(
                {
                    "Action": "Login",
                    "Username": self.username,
                    "Secret": self.secret,
                    "Events": self.event_mask,
                    "ActionID": action_id,
                }
            )
        )
        await writer.drain()
        early: list[dict[str, str]] = []
        logged_in = False
        while not logged_in:
            data = await asyncio.wait_for(reader.read(65536), self.connect_timeout_s)
            if not data:
                raise ConnectionError("AMI closed during login")
            for message in parser.feed(data):
                if message.get("ActionID") == action_id and "Response" in message:
                    if message["Response"].lower() != "success":
                        raise AmiAuthError(f"AMI login refused: {message.get('Message', '')}")
                    logged_in = True
                elif "Event" in message:
                    early.append(message)  # also those read together with the response
        return early

    async def events(self) -> AsyncIterator[dict[str, str]]:
        backoff = self.min_backoff_s
        while True:
            writer: asyncio.StreamWriter | None = None
            try:
                reader, stream_writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.connect_timeout_s
                )
                writer = stream_writer
                parser = AmiParser()
                early = await self._login(reader, stream_writer, parser)
                log.info(
                    "AMI connected to %s:%d (events: %s)", self.host, self.port, self.event_mask
                )
                backoff = self.min_backoff_s
                for message in early:
                    yield message
                while data := await reader.read(65536):
                    for message in parser.feed(data):
                        if "Event" in message:
                            yield message
                log.warning("AMI connection closed; reconnecting in %.1f s", backoff)
            except AmiAuthError:
                raise
            except (TimeoutError, OSError, ConnectionError) as exc:
                log.warning("AMI unreachable (%s); retrying in %.1f s", type(exc).__name__, backoff)
            finally:
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(OSError, ConnectionError):
                        await writer.wait_closed()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
