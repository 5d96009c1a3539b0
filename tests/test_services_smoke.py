"""The real services answer: Kafka through kafka-python and aiokafka, ClickHouse through clickhouse-driver and chdb."""

from __future__ import annotations

import asyncio
import uuid

import pytest


@pytest.mark.kafka
def test_kafka_round_trip_kafka_python(kafka_bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(topic, key=b"k", value=b"hello").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=20_000)
    values = [m.value for m in consumer]
    consumer.close()
    assert values == [b"hello"]


@pytest.mark.kafka
def test_kafka_round_trip_aiokafka(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"smoke-{uuid.uuid4().hex[:8]}"

    async def run() -> bytes:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hi")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), 20)
            return msg.value  # type: ignore[no-any-return]
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == b"hi"


@pytest.mark.clickhouse
def test_clickhouse_server_answers(clickhouse_hostport: tuple[str, int]) -> None:
    from clickhouse_driver import Client

    host, port = clickhouse_hostport
    assert Client(host, port=port).execute("SELECT 1 + 1") == [(2,)]


def test_chdb_answers() -> None:
    import chdb

    assert chdb.query("SELECT 1 + 1", "CSV").bytes().strip() == b"2"
