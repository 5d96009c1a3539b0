"""Each validation run gets its own /tmp (issue 17.5): two runs appending to one file outside the workdir no
longer see each other's line, the host's /tmp is left as it was, and the file is still compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]


def _validate(a: str, b: str) -> dict:
    r = subprocess.run([*SYSWEAVE, "validate", "--original", a, "--transpiled", b, "--json", "--no-store"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return json.loads(r.stdout)


def test_runs_do_not_share_tmp() -> None:
    path = f"/tmp/sysweave-shared-{uuid.uuid4().hex}.log"
    append = f"{sys.executable} -c \"open('{path}', 'a').write('one line\\n')\""
    twice = f"{sys.executable} -c \"f = open('{path}', 'a'); f.write('one line\\n'); f.write('one line\\n')\""
    same = _validate(append, append)
    assert same["verdict"] == "equivalent", same["reason"]  # the second run does not find the first one's line
    assert not os.path.exists(path)  # the host's /tmp is untouched
    other = _validate(append, twice)  # and the file is still compared
    assert other["verdict"] == "divergent", other["reason"]
    assert "sysweave-shared" in json.dumps(other["divergence"])
