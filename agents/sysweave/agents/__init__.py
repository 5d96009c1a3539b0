"""sysweave.agents"""

__all__ = ["daemon", "filters", "gpu", "ptrace_backend", "publisher", "queues", "records", "render", "session", "spool", "syscall_args"]  # the public modules; each module's own __all__ marks its names
