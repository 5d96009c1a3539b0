"""The demo's validations: ``sysweave validate --json`` for many pairs in one process (glue).

Every check goes through the command's own code (argument defaults from :func:`.validate.add_arguments`,
:func:`.validate_cases.run_case`, :func:`.validate.store_report`), with one compiled probe and one store for
all of them: what a validation costs without a Python interpreter and a BPF program load per pair (those
cost ~0.7 s of each ``sysweave validate`` call, more than the two runs).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sysweave.cli.signals import Cancellation
from sysweave.cli.validate import add_arguments, data_flow, store_report
from sysweave.cli.validate_cases import Interrupted, run_case
from sysweave.validator.equivalence.cases import Case
from sysweave.validator.equivalence.harness import Harness, SideSummary

__all__ = ["Checker", "Tally"]


@dataclass
class Tally:
    """Verdicts of a demo: right, wrong (the opposite verdict, an error) and undecided (no verdict stood)."""

    right: int = 0
    wrong: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)
    not_stored: list[str] = field(default_factory=list)  # reports the store refused (the verdict stands)

    @property
    def total(self) -> int:
        return self.right + len(self.wrong) + len(self.undecided)

    def as_dict(self) -> dict[str, Any]:
        return {"right": self.right, "wrong": self.wrong, "undecided": self.undecided, "total": self.total,
                "not_stored": len(self.not_stored)}


class Checker:
    """Validations against one workdir, each judged against the verdict it must give."""

    def __init__(self, workdir: Path, store: str | None) -> None:
        from sysweave.cli.runner import EbpfRunner

        self.parser = argparse.ArgumentParser(prog="sysweave validate", add_help=False)
        add_arguments(self.parser)
        self.common = ["--workdir", str(workdir), "--json", *(["--store", store] if store else [])]
        defaults = self.parser.parse_args(["--original", "true", "--transpiled", "true", *self.common])
        self.harness = Harness(str(workdir), defaults.timeout, EbpfRunner())
        self.tally = Tally()
        self.signals = Cancellation(Interrupted)  # install with signals.installed(): Ctrl-C stops cleanly

    def close(self) -> None:
        self.harness.close()

    def check(self, label: str, original: str, transpiled: str, expected: str,
              case: Case | None = None) -> tuple[bool, str]:
        """(right, the report's one line). Right only when the verdict is ``expected``; a crash is wrong.
        ``case``: its stdin, arguments, environment (a case file's, :func:`~.cases.load_cases`); None: none.
        Raises :class:`Interrupted` when a run was cut short by a signal (Ctrl-C)."""
        args = self.parser.parse_args(["--original", original, "--transpiled", transpiled, *self.common])
        try:
            out = run_case(args, self.harness, case or Case(), data_flow)
            if out.legacy is not None and out.sides is not None:
                self._store(label, args, out.legacy, *out.sides)
            verdict, line = out.entry["verdict"], f"{out.entry['verdict'].upper()}: {out.entry['reason']}"
        except Interrupted:
            raise
        except Exception as exc:  # a crash of the validator is a wrong answer, and the demo goes on
            verdict, line = "error", f"ERROR: {type(exc).__name__}: {exc}"
        if verdict == expected:
            self.tally.right += 1
        elif verdict == "undecided":
            self.tally.undecided.append(f"{label}: {line}")
        else:
            self.tally.wrong.append(f"{label}: {line} [expected {expected}]")
        return verdict == expected, line

    def _store(self, label: str, args: argparse.Namespace, report: dict[str, Any], *sides: SideSummary) -> None:
        """As ``validate`` does: storing is a side effect, a store that refuses the report leaves the verdict."""
        try:
            with self.signals.deferred():  # the store is never left with half a report
                store_report(args, report, *sides)
        except Exception as exc:
            if not self.tally.not_stored:
                print(f"sysweave demo: warning: report not stored: {exc}", file=sys.stderr, flush=True)
            self.tally.not_stored.append(f"{label}: {exc}")
