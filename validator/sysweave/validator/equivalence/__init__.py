"""Equivalence by effects: what each run did (``extraction``, ``observe``, ``filestate``, ``processes``, ``pipes``,
``moved``, ``ports``, ``origin``), compared with a Myers alignment (``compare``, ``myers``, ``excerpt``), whether
the evidence suffices (``evidence``, ``settle``, ``hang``), and the harness that runs the programs and reads what
they left (``harness``, ``cases``, ``effects``, ``stored``) with its reports (``report``, ``junit``). All but the
harness are pure."""

# the public modules; each module's own __all__ marks its names
__all__ = ["cases", "compare", "effects", "evidence", "excerpt", "extraction", "filestate", "hang", "harness", "junit",
           "model", "moved", "myers", "observe", "origin", "pipes", "ports", "processes", "report", "settle", "stored"]
