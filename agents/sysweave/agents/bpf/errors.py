"""The BPF object layer's error, in a module of its own: the loaders (objects, libbpf_object) and the host
checks (preconditions, which ask libbpf_object whether the CO-RE object can load) all raise or name it, and
objects imports preconditions — defined in objects, it would close a circle."""

from __future__ import annotations

from sysweave.schemas.errors import AgentError

__all__ = ["ObjectError"]


class ObjectError(AgentError):
    """A BPF object operation failed (the message names the object and the errno)."""
