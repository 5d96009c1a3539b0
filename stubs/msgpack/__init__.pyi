# Type stubs for the part of msgpack (1.x, untyped) sysweave uses; mypy reads them through mypy_path.
from typing import Any

__all__ = ["ExtraData", "FormatError", "StackError", "packb", "unpackb"]

class ExtraData(ValueError):
    unpacked: Any
    extra: bytes

class FormatError(ValueError): ...
class StackError(ValueError): ...

def packb(o: Any, **kwargs: Any) -> bytes: ...
def unpackb(packed: bytes | bytearray | memoryview, **kwargs: Any) -> Any: ...
