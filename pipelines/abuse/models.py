"""Hot reload: abuse workers follow ``callguard.models`` and swap text classifiers live.

Every worker must see every promotion, so the follower is not part of a consumer group: it
assigns itself all partitions of the (compacted) topic and reads them from the start, which
also tells a freshly started worker which version is current.  Loading happens off the event
loop; the swap is one attribute assignment, so an utterance is scored by either the old or the
new model, never by a half-loaded one.  Each transcript and incident records the version used.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from schemas.codec import MalformedMessage, decode
from schemas.records import ModelPromotion

log = logging.getLogger(__name__)

TEXT_MODEL = "abuse-text"


class PromotionFollower:
    """Latest promotion per model, read from the models topic with a group-less consumer."""

    def __init__(self, bootstrap: str, topic: str, model: str = TEXT_MODEL) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.model = model
        self._consumer: Any = None
        self._latest: ModelPromotion | None = None

    def _open(self) -> Any:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"callguard-model-follower-{uuid.uuid4().hex[:8]}",  # never committed
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        metadata = consumer.list_topics(self.topic, timeout=10)
        partitions = metadata.topics[self.topic].partitions
        consumer.assign([TopicPartition(self.topic, p, 0) for p in partitions])
        return consumer

    def poll(self, max_messages: int = 100) -> ModelPromotion | None:
        """The newest promotion seen so far (blocking briefly; call from a thread)."""
        if self._consumer is None:
            self._consumer = self._open()
        for message in self._consumer.consume(max_messages, timeout=0.5):
            if message.error() or message.value() is None:
                continue
            try:
                promotion = decode(ModelPromotion, message.value())
            except MalformedMessage as error:
                log.warning("ignored a malformed model promotion: %s", error.reason)
                continue
            if promotion.model != self.model:
                continue
            if self._latest is None or promotion.ts_ms >= self._latest.ts_ms:
                self._latest = promotion
        return self._latest

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class ClassifierSwitch:
    """Applies promotions to whatever analyzer exists (or will exist) in this worker."""

    def __init__(self, load: Callable[[str], Any]) -> None:
        self._load = load
        self.version = ""  # the promoted version in force ("" = the configured default)
        self.pending: ModelPromotion | None = None

    def wanted(self, promotion: ModelPromotion | None, current_version: str) -> bool:
        return promotion is not None and promotion.version not in (self.version, current_version)

    def load(self, promotion: ModelPromotion) -> Any:
        classifier = self._load(promotion.path)
        self.version = promotion.version
        log.info(
            "text classifier %s now in use (%s by %s: %s)",
            getattr(classifier, "version", promotion.version),
            promotion.action,
            promotion.promoted_by,
            promotion.reason,
        )
        return classifier
