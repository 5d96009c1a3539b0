"""sysweave.agents"""

# the public modules; each module's own __all__ marks its names
__all__ = ["daemon", "decisions", "filters", "gpu", "ptrace_backend", "publisher", "queues", "records", "render",
           "sdk_server", "session", "spool", "syscall_args"]
