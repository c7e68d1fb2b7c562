"""Our producers put a call id on the partition faust expects (co-partitioning holds).

The PBX connector, simulator and tools produce with confluent-kafka; faust produces (and
expects keys) with aiokafka's murmur2 partitioner.  A mismatch splits one call over two
partitions: its events and its transcripts on different workers, its state written to two
changelog partitions.
"""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Producer

from connectors.kafka.topics import KEY_PARTITIONER, TopicCatalog
from tests.integration.conftest import read_topic


def test_confluent_producers_partition_keys_like_faust(
    bootstrap: str, catalog: TopicCatalog
) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **KEY_PARTITIONER})
    keys = [f"call-{n}-{n * 7919}".encode() for n in range(40)]
    for key in keys:
        producer.produce(catalog.call_events, b"{}", key)
    assert producer.flush(30) == 0
    landed = {m.key(): m.partition() for m in read_topic(bootstrap, catalog.call_events)}
    faust_partition = DefaultPartitioner()
    partitions = list(range(catalog.partitions))
    expected = {key: faust_partition(key, partitions, partitions) for key in keys}
    assert landed == expected
    assert len(set(landed.values())) == catalog.partitions  # the keys did spread
