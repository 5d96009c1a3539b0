"""A side that did not finish (pure): a hang is evidence, not a reason to give up.

When one side was killed at its timeout and the other finished, the verdict is DIVERGENT. The effects the
hung side had before the kill are compared first: a difference it had already made (bytes that differ,
a file or process the other never has) is still the first divergence; what it merely had not done yet
(a shorter stdout, a file not yet written, its processes killed) is explained by the hang itself.

    >>> from sysweave.validator.equivalence.observe import Obs, StreamObs
    >>> a, b = Obs(exit_code=0), Obs(exit_signal=9)
    >>> a.streams["stdout"], b.streams["stdout"] = StreamObs(b"1\\n2\\n", 4), StreamObs(b"1\\n", 2)
    >>> v = hang_verdict(a, b, Hang(0.02, None, 5.0))
    >>> v.verdict, v.explanation
    ('divergent', 'the transpiled run did not finish within 5 s; the original exited 0 after 0.02 s')
    >>> b.streams["stdout"] = StreamObs(b"7\\n", 2)
    >>> hang_verdict(a, b, Hang(0.02, None, 5.0)).explanation
    "byte 0 of stdout differs: '1\\\\n2\\\\n' vs '7\\\\n'"
"""

from __future__ import annotations

from dataclasses import dataclass

from sysweave.validator.equivalence.compare import Divergence, Verdict, differences, evidence
from sysweave.validator.equivalence.observe import Obs

__all__ = ["Hang", "both_hung_reason", "hang_verdict", "progress"]


@dataclass(frozen=True)
class Hang:
    """Which side did not finish: ``original_s``/``transpiled_s`` is the finished side's wall time (s) and
    None for the side killed after ``limit_s`` seconds."""

    original_s: float | None
    transpiled_s: float | None
    limit_s: float

    @property
    def hung(self) -> str:
        return "original" if self.original_s is None else "transpiled"


def _already_made(d: Divergence, hung: str) -> bool:
    """Whether a difference is something the hung side did (True) rather than something it had not done yet."""
    if d.resource.startswith("exit") or d.kind == "length":
        return False
    mine = d.transpiled if hung == "transpiled" else d.original
    if d.kind in ("missing", "extra"):
        only_finished = d.kind == ("missing" if hung == "transpiled" else "extra")
        # a program still running when its tree was killed (no exit status, or SIGKILL) is the hang itself
        still_running = d.resource == "processes" and ("killed by SIGKILL" in d.explanation
                                                       or "(exit code None)" in d.explanation)
        return not only_finished and not still_running
    return not (d.kind == "content" and not mine)  # no bytes of its own: a prefix of the finished side's


def hang_verdict(a: Obs, b: Obs, hang: Hang, exit_finished: str | None = None) -> Verdict:
    """The verdict when exactly one side hung. ``exit_finished``: how the finished side ended ("exited 0")."""
    diffs, unknown = differences(a, b)
    ev = evidence(a, b, unknown)
    finished = a if hang.hung == "transpiled" else b
    status = exit_finished or (f"exited {finished.exit_code}" if finished.exit_signal is None
                               else f"was killed by signal {finished.exit_signal}")
    other = "original" if hang.hung == "transpiled" else "transpiled run"
    took = hang.original_s if hang.hung == "transpiled" else hang.transpiled_s
    who = "transpiled run" if hang.hung == "transpiled" else "original"
    text = f"the {who} did not finish within {hang.limit_s:g} s; the {other} {status} after {took or 0:.2f} s"
    hang_div = Divergence("exit", "hang", None if hang.hung == "original" else _exit(a),
                          None if hang.hung == "transpiled" else _exit(b), explanation=text)
    real = [d for d in diffs if _already_made(d, hang.hung)]
    notes = [f"the {who} was killed after {hang.limit_s:g} s; its effects until then were compared first"]
    if real:
        return Verdict("divergent", 1.0, real[0].explanation, real[0], notes, real[1:] + [hang_div], ev)
    return Verdict("divergent", 1.0, text, hang_div, notes, [], ev)


def _exit(o: Obs) -> str:
    return f"exit code {o.exit_code}" if o.exit_signal is None else f"signal {o.exit_signal}"


def progress(o: Obs) -> str:
    """What a run did before it was killed, in a phrase: output bytes, files, processes."""
    files = sum(1 for f in o.files.values() if f.exists)
    kids = len(o.programs.children) if o.programs else 0
    return (f"{len(o.stdout)} bytes of stdout, {len(o.stderr)} of stderr, {files} file(s) in scope, "
            f"{kids} child program(s)")


def both_hung_reason(a: Obs, b: Obs, limit_a: float, limit_b: float) -> str:
    """'could not decide' when neither side finished, with what each did until it was killed."""
    return (f"neither side finished: the original was killed after {limit_a:g} s ({progress(a)}), the transpiled "
            f"run after {limit_b:g} s ({progress(b)}); a longer --timeout may decide it")
