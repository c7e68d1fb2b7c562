"""Thin faust wiring of the abuse-detection stream (the rules live in ``pipelines.core``).

Two agents, both co-partitioned by call id:

* ``callguard.abuse.transcribe`` reads live audio (``pbx.audio``), cuts each leg into
  utterances, and hands each utterance to an :class:`~pipelines.abuse.analysis.UtteranceAnalyzer`
  (ASR → hallucination guard → PII masking → text classifier → voice cues) in a worker thread,
  so a slow transcription never blocks the event loop.  Each result goes to
  ``calls.transcripts``.  Segmenter state is in memory: after a crash the chunks of an
  utterance that straddled the last commit are re-read, at worst one utterance is cut short.
* ``callguard.abuse.respond`` reads call events, transcripts, PBX command results and ticks,
  folds them into the per-call state of the ``abuse`` table (changelog-backed) with
  :func:`pipelines.core.abuse.step`, and sends incidents, PBX commands and decisions.  Ids are
  derived from the call and purpose, so a replay after a crash repeats ids, never actions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import faust
from faust.types import EventT, StreamT

from connectors.kafka.topics import TopicCatalog
from pipelines.abuse import wire
from pipelines.abuse.analysis import LegSegmenters, UtteranceAnalyzer
from pipelines.abuse.models import ClassifierSwitch, PromotionFollower
from pipelines.core import abuse as core
from pipelines.streaming import (
    Clock,
    DeadLetters,
    TimedState,
    decoded,
    guarded,
    raw_topic,
    send_record,
    split_ticks,
)
from schemas.codec import MalformedMessage, decode
from schemas.records import AudioChunk, CallEvent, CommandResult, Transcript

log = logging.getLogger(__name__)

TRANSCRIBER = "abuse-transcribe"
RESPONDER = "abuse-respond"


def register_transcriber(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    analyzer: Callable[[], UtteranceAnalyzer],
    segmenters: Callable[[], LegSegmenters],
    *,
    follower: PromotionFollower | None = None,
    switch: ClassifierSwitch | None = None,
    reload_interval_s: float = 5.0,
) -> Any:
    """``analyzer`` is called once, on the first utterance: heavy models load lazily.

    With ``follower`` and ``switch``, promoted text classifiers replace the running one
    without a restart (see :mod:`pipelines.abuse.models`).
    """
    source = raw_topic(app, catalog.audio, partitions=catalog.partitions)
    transcripts = raw_topic(app, catalog.transcripts)
    legs = segmenters()
    loaded: list[UtteranceAnalyzer] = []
    promoted: list[Any] = []  # a classifier promoted before the analyzer existed

    def get_analyzer() -> UtteranceAnalyzer:
        if not loaded:
            made = analyzer()
            if promoted:
                made.classifier = promoted.pop()
            loaded.append(made)
        return loaded[0]

    if follower is not None and switch is not None:
        failed: set[str] = set()

        @app.timer(interval=reload_interval_s, name="callguard.abuse.models")
        async def follow_models() -> None:
            loop = asyncio.get_running_loop()
            try:
                promotion = await loop.run_in_executor(None, follower.poll)
            except Exception as exc:  # noqa: BLE001 - the broker may be briefly away
                log.info("model promotions not readable yet: %s", exc)
                return
            if promotion is None or promotion.version in (switch.version, *failed):
                return
            try:
                classifier = await loop.run_in_executor(None, switch.load, promotion)
            except Exception:
                failed.add(promotion.version)  # do not retry a broken version every tick
                log.exception("could not load promoted model %s", promotion.version)
                return
            if loaded:
                loaded[0].classifier = classifier
            else:
                promoted[:] = [classifier]

    async def on_chunk(chunk: AudioChunk) -> None:
        utterances = legs.feed(chunk)
        if chunk.final and loaded:
            # the leg ended: after its last utterances, its loudness baseline can go
            loaded[0].forget_leg_after(chunk.call_id, chunk.leg, len(utterances))
        if not utterances:
            return
        loop = asyncio.get_running_loop()
        if not loaded:  # the first call loads the models (seconds): off the event loop
            await loop.run_in_executor(None, get_analyzer)
        analyzer_ = get_analyzer()
        for utterance in utterances:
            transcript = await loop.run_in_executor(None, analyzer_.analyze, utterance)
            if transcript is not None:
                await send_record(transcripts, transcript.call_id, transcript)

    @app.agent(source, name="callguard.abuse.transcribe")
    async def transcribe(stream: StreamT) -> None:
        async for event, chunk in decoded(stream.events(), AudioChunk, dead_letters, TRANSCRIBER):
            await guarded(event, dead_letters, TRANSCRIBER, on_chunk(chunk))

    return transcribe


def register_responder(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    *,
    policies: core.PolicyBook,
    idle_limit_ms: int,
) -> Any:
    source = raw_topic(
        app,
        catalog.call_events,
        catalog.transcripts,
        catalog.command_results,
        catalog.ticks,
        partitions=catalog.partitions,
    )
    commands = raw_topic(app, catalog.commands)
    decisions = raw_topic(app, catalog.decisions)
    incidents = raw_topic(app, catalog.incidents)
    def expire(state: core.AbuseState, now_ms: int) -> core.AbuseState | None:
        return core.expire(state, now_ms, idle_limit_ms)

    states = TimedState(
        app,
        "abuse",
        catalog.partitions,
        core.AbuseState.to_dict,
        core.AbuseState.from_dict,
        lambda state: core.wake_at(state, idle_limit_ms),
    )

    async def emit(out: list[core.Output]) -> None:
        for made in out:
            if isinstance(made, core.IncidentFound):
                await send_record(incidents, made.call_id, wire.incident(made))
                continue
            command = wire.command(made)
            if command is not None:
                await send_record(commands, made.call_id, command)
            await send_record(decisions, made.call_id, wire.decision(made))
            if isinstance(made, core.Warn | core.Terminate | core.Hangup | core.Dismissed):
                log.info("call %s: abuse %s (%s)", made.call_id, made.kind, made.reason)

    async def on_observation(event: EventT, obs: core.Observation) -> None:
        partition = event.message.partition
        await emit(
            states.step(partition, obs.call_id, lambda old: core.step(old, obs, clock(), policies))
        )

    async def on_tick(partition: int, now_ms: int) -> None:
        for out in states.fire_due(partition, now_ms, core.due, expire):
            await emit(out)

    def observe(topic: str, raw: bytes | None) -> core.Observation:
        if topic == catalog.command_results:
            return wire.result_seen(decode(CommandResult, raw))
        if topic == catalog.transcripts:
            return wire.utterance_seen(decode(Transcript, raw))
        return wire.call_seen(decode(CallEvent, raw))

    @app.agent(source, name="callguard.abuse.respond")
    async def respond(stream: StreamT) -> None:
        async for event in split_ticks(stream, catalog.ticks, on_tick):
            try:
                obs = observe(event.message.topic, event.value)
            except MalformedMessage as error:
                await dead_letters.reject(event, RESPONDER, error)
                continue
            await guarded(event, dead_letters, RESPONDER, on_observation(event, obs))

    return respond
