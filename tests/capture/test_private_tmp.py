"""A run's private /tmp (issue 17.5): its writes outside the workdir go to its own scratch, never the host's nor
another run's; it still reads the host's /tmp and writes its workdir (under /tmp) by relative or absolute path."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid

import pytest

from sysweave.agents.scratch import PrivateTmp, unavailable

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespaces)")


def test_private_tmp_isolates_writes_and_keeps_reads() -> None:
    assert unavailable() is None
    tag = uuid.uuid4().hex
    shared_log = f"/tmp/sysweave-test-{tag}.log"
    existing = f"/tmp/sysweave-test-{tag}.in"
    with open(existing, "w") as f:
        f.write("input\n")
    workdir = tempfile.mkdtemp(prefix="sysweave-run-", dir="/tmp")
    script = (f"echo run >> {shared_log}; cat {existing} > copied.txt; "
              f'echo abs > "$(pwd)/abs.txt"; mv "$(pwd)/abs.txt" moved.txt; mv moved.txt "$(pwd)/abs.txt"; '
              f'wc -l < {shared_log} > count.txt; rm {existing}')
    try:
        for _ in range(2):  # the second run must not see the first one's append, nor its deletion
            scratch = PrivateTmp(shared=[workdir], cwd=workdir)
            try:
                subprocess.run(["/bin/sh", "-c", script], cwd=workdir, preexec_fn=scratch.enter, check=True)
                final = scratch.final_path(shared_log)
                assert final is not None and final != shared_log
                with open(final) as f:
                    assert f.read() == "run\n"
                assert scratch.final_path(existing) is None  # deleted in the run (a whiteout)
            finally:
                scratch.close()
            assert not os.path.exists(shared_log) and os.path.exists(existing)  # the host's /tmp untouched
            for name, text in (("copied.txt", "input\n"), ("abs.txt", "abs\n"), ("count.txt", "1\n")):
                with open(os.path.join(workdir, name)) as f:
                    assert f.read() == text, name
        assert not os.path.exists(scratch.dir)
    finally:
        os.unlink(existing)
        subprocess.run(["rm", "-rf", workdir], check=False)
