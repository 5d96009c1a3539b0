from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s (a Faust worker can take long to leave its consumer group)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def create_topics(bootstrap: str, suffix: str, partitions: int = 4) -> None:
    """Create a test's own topics up front: a consumer subscribed to a topic that does not exist yet only
    sees it after its next metadata refresh (minutes)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    from sysweave.schemas import topics

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t + suffix, partitions, 1) for t in
                         (topics.TOPIC_EVENTS, topics.TOPIC_TRACES, topics.TOPIC_CONTROL, topics.TOPIC_DEAD_LETTER,
                          topics.TOPIC_VALIDATION,
                          topics.TOPIC_ENDPOINTS, topics.TOPIC_SAMPLING)])
    admin.close()
