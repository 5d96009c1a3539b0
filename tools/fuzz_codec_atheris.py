"""Coverage-guided fuzzing of the batch decoder with atheris: any exception but DecodeError is a bug.

Run: .venv/bin/python tools/fuzz_codec_atheris.py -atheris_runs=1000000   (or `make fuzz`)
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from sysweave.schemas import codec


def one_input(data: bytes) -> None:
    try:
        codec.decode_batch(data)
    except codec.DecodeError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
