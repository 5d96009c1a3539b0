"""Text in the stored columns: ClickHouse ``String`` bytes ⇄ ``str`` (undecodable bytes kept exact by
surrogateescape), and dict columns (syscall ``args``, compute-block ``attrs``) as JSON text: bytes as
``{"$hex": "..."}``, tuples as arrays. Used by the column map (``rows``), the columnar codec (``columns``) and
the stores' readers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["decode_args", "decode_args_column", "decode_text", "encode_args", "encode_json", "encode_text"]


def encode_text(s: str) -> bytes:
    """str -> the bytes a ClickHouse String holds (surrogateescape keeps undecodable bytes exact)."""
    return s.encode("utf-8", "surrogateescape")


def decode_text(b: bytes | str) -> str:
    return b if isinstance(b, str) else b.decode("utf-8", "surrogateescape")


def _hex_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$hex": bytes(v).hex()}
    raise TypeError(f"cannot store {type(v).__name__} in JSON args")


# one encoder (json.dumps(..., ensure_ascii=False) builds one per call); tuples are arrays natively, bytes go
# through the default hook, so the C encoder does all the work
_JSON = json.JSONEncoder(ensure_ascii=False, default=_hex_default).encode


def encode_json(value: Any) -> str:
    """Any JSON value in the args/attrs form (bytes as {"$hex": ...}, tuples as arrays), by the one C encoder."""
    return _JSON(value)


def encode_args(args: dict[str, Any]) -> str:
    """Syscall arguments as JSON text: bytes as {"$hex": "..."}, tuples as arrays; other values as JSON has them.

    Text keys such as ``path`` stay plain JSON strings, so ``visitParamExtractString(args, 'path')`` (18.16 and
    current ClickHouse alike) reads them."""
    return _JSON(args)


def _hex_hook(d: dict[str, Any]) -> Any:
    return bytes.fromhex(d["$hex"]) if len(d) == 1 and "$hex" in d else d


def _untuple(args: dict[str, Any]) -> dict[str, Any]:
    """JSON arrays back to tuples (args values are flat: tuples of ints or of strings)."""
    for k, v in args.items():
        if type(v) is list:
            args[k] = tuple(v)
    return args


def decode_args(text: str) -> dict[str, Any]:
    return _untuple(json.loads(text, object_hook=_hex_hook)) if text else {}


def decode_args_column(raw: Sequence[bytes | str]) -> list[dict[str, Any]]:
    """Many JSON texts at once (one parse of a JSON array: the reader's fast path for 10^5 rows)."""
    parts = [(v if isinstance(v, bytes) else encode_text(v)) or b"{}" for v in raw]
    text = (b"[" + b",".join(parts) + b"]").decode("utf-8", "surrogateescape")
    return [_untuple(d) for d in json.loads(text, object_hook=_hex_hook)]
