"""The agent obeys TOPIC_CONTROL through the typed ``topics.ControlDecision``: a decision for its host moves the
kernel threshold of the decision's operation class, and nothing else (``daemon.apply_decision``).

The capture and the function-probe layers are recording stand-ins here (the BPF maps they write are covered by
tests/distributed/test_sampling_loop.py with a real agent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from sysweave.agents.bpf.uprobes import CLASS_COMPUTE, CLASS_GPU_KERNEL, CLASS_MEMCPY
from sysweave.agents.daemon import LAYER_CLASSES, apply_decision
from sysweave.schemas.topics import ControlDecision, OperationClass


@dataclass
class Recorder:
    """Stand-in for the capture's probe and the layers: records the thresholds written."""

    written: list[tuple[str, int]] = field(default_factory=list)

    def set_slow_threshold(self, ns: int) -> None:
        self.written.append(("syscall", ns))

    def set_threshold(self, slot: int, ns: int) -> None:
        self.written.append((f"slot{slot}", ns))


@dataclass
class Capture:
    probe: Recorder


@pytest.mark.parametrize("op, want", [(OperationClass.SYSCALL, "syscall"), (OperationClass.COMPUTE, f"slot{CLASS_COMPUTE}"),
                                      (OperationClass.GPU_KERNEL, f"slot{CLASS_GPU_KERNEL}"),
                                      (OperationClass.MEMCPY, f"slot{CLASS_MEMCPY}")])
def test_a_decision_moves_its_class_threshold_on_its_host_only(op: OperationClass, want: str) -> None:
    rec = Recorder()
    cap, layers = cast(Any, Capture(rec)), cast(Any, rec)
    wire = ControlDecision("h1", 65_536, 0.2, op).encode()
    assert apply_decision(ControlDecision.decode(wire), "h1", cap, layers)
    assert not apply_decision(ControlDecision.decode(wire), "h2", cap, layers)
    assert rec.written == [(want, 65_536)]


def test_without_function_probes_a_layer_decision_is_not_applied() -> None:
    rec = Recorder()
    assert not apply_decision(ControlDecision("h1", 5, 1.0, OperationClass.MEMCPY), "h1", cast(Any, Capture(rec)), None)
    assert rec.written == []
    assert set(LAYER_CLASSES) == set(OperationClass) - {OperationClass.SYSCALL}
