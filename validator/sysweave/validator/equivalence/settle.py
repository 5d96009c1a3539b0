"""The end of extraction (pure): roots, effects per process, the program tree, exit status, final file
states, input files — from what :mod:`.observe`'s pass over the events collected."""

from __future__ import annotations

import os

from sysweave.schemas.events import EdgeKind, UnifiedTrace
from sysweave.validator.equivalence.extraction import Extraction
from sysweave.validator.equivalence.filestate import FileEffect, from_event
from sysweave.validator.equivalence.model import IGNORED_PARTS, Key, Obs, Origin
from sysweave.validator.equivalence.processes import Proc, ProgramNode, helpers, program_tree, role

__all__ = ["edge_roles", "finish", "strip"]


def finish(ex: Extraction, root_pid: int, exit_code: int | None, tree: dict[str, FileEffect] | None) -> None:
    """Settle ``ex.obs`` from what the pass collected. ``root_pid``: the tree's root (0: every process without
    a traced parent); ``exit_code``: the shell-style code the capture saw; ``tree``: the workdir's final
    entries (``./rel`` -> state)."""
    ex.obs.io_bytes += ex.io_bytes
    for p in ex.procs.values():
        p.exit_code, p.signal = _settle(p, ex.signals_sent.get(p.key))
    for rid, last in ex.file_writes.items():  # the hot path's file writes: the last change of each path
        where = ex.file_of[rid]
        if where not in ex.scope or ex.scope[where].h.mono_ns <= last.h.mono_ns:
            ex.scope[where] = last
    roots = [p.key for p in ex.procs.values() if p.parent is None and (root_pid == 0 or p.key[1] == root_pid)]
    roots = [r for r in roots if ex.procs[r].images or ex.procs[r].children] or roots
    _own_effects(ex)
    helper: set[Key] = set()
    for r in roots:
        helper |= helpers(ex.procs, r, ex.effects)
    _programs(ex, roots, exit_code)
    _files(ex, tree)
    _inputs(ex, helper)
    for c in ex.dgram.values():
        c.origin = c.origin or (c.ios[0][2] if c.ios else None)


def _own_effects(ex: Extraction) -> None:
    """A process has effects of its own if it wrote a path in scope or read an input file (not the runtime's)."""
    for (proc, path), when in ex.touched.items():
        if ex.paths.rel(path, ex.cwd_of(proc[0])) is not None:
            ex.effects.add(proc)
            ex.first_output[proc] = min(when, ex.first_output.get(proc, when))
    for proc, host, path, is_dir in ex.reads:
        if proc not in ex.effects and not is_dir and path not in ex.program_files and \
                ex.paths.rel(path, ex.cwd_of(host)) is not None:
            ex.effects.add(proc)


def _programs(ex: Extraction, roots: list[Key], exit_code: int | None) -> None:
    """Roles, the visible-program tree, exit status, and the launchers' reports to strip from stderr."""
    obs = ex.obs
    for k, p in ex.procs.items():  # roles (for reports): a process's own final image, else its nearest ancestor's
        q: Proc | None = p
        while q is not None and not q.images:
            q = ex.procs.get(q.parent) if q.parent else None
        obs.roles[k] = " ".join(role(q.argv, ex.cwd_of(k[0]))) if q else ""
    if roots:
        trees = [program_tree(ex.procs, r, ex.effects, ex.cwd_of(r[0]), ex.direct, ex.first_output) for r in roots]
        obs.programs = trees[0] if len(trees) == 1 else ProgramNode(("", 0), ("<hosts>",), None, None, trees)
        for r, t in zip(roots, trees):
            obs.host_exits[r[0]] = t.exit_code
    obs.exit_code, obs.exit_signal = _exit_status(ex, roots, exit_code)
    if obs.programs is not None and len(roots) == 1:  # programs the root exec'd in place end as the run does
        for node in obs.programs.children:
            if node.key == obs.programs.key and node.exit_code is None and node.signal is None:
                node.exit_code, node.signal = obs.exit_code, obs.exit_signal
    ex.strip = [r for k in _wrappers(obs.programs) for r in ex.reports.get(k, [])]
    obs.exit_origin = Origin(roots[0][0], roots[0][1], 1.0) if roots else None  # the exit comes last


def _files(ex: Extraction, tree: dict[str, FileEffect] | None) -> None:
    """The final state of every path in scope (``tree``, when given, is the truth for the workdir)."""
    obs = ex.obs
    for (host, path), changed in ex.scope.items():
        cwd = ex.cwd_of(host)
        rel = ex.paths.rel(path, cwd)
        if rel is None or rel == "." or (ex.workdir and rel.startswith("./.sysweave-std")):
            continue
        fs = ex.states.get((host, path)) or (ex.states.get((host, os.path.join(cwd, path))) if cwd else None)
        if fs is not None:
            eff = from_event(fs)
        elif ex.final_state is not None and path.startswith("/"):
            eff = ex.final_state(path)
        else:
            eff = FileEffect(path, False, known=False)
        if not eff.exists and eff.known and (host, path) in ex.created:
            continue  # intermediate: created and gone by the end
        eff.path, eff.origin = _key(obs, host, rel), ex.origin(changed)
        obs.files[eff.path] = eff
    for rel, eff in (tree or {}).items():
        if rel.startswith("./.sysweave-std") or rel in obs.files or any(p in rel + "/" for p in IGNORED_PARTS):
            continue
        obs.files[rel] = eff
    for name, eff in list(obs.files.items()):
        if tree is not None and name.startswith("./") and name not in tree and eff.exists and eff.known:
            obs.files[name] = FileEffect(name, False, origin=eff.origin)


def _inputs(ex: Extraction, helper: set[Key]) -> None:
    """Input files read by the program (not by launcher helpers), beyond the runtime's own files; directory
    listings are not input (globbing vs naming the files: the files then read are compared)."""
    for proc, host, path, is_dir in ex.reads:
        if is_dir or proc in helper or path in ex.program_files or (host, path) in ex.scope:
            continue  # the runtime's, or a path the run wrote itself (not input from the world)
        rel = ex.paths.rel(path, ex.cwd_of(host))
        if rel is None:
            continue
        ex.obs.reads.setdefault(_key(ex.obs, host, rel), Origin(host, proc[1], 0.0))


def _wrappers(node: ProgramNode | None) -> list[Key]:
    return [] if node is None else [*node.via, *(k for c in node.children for k in _wrappers(c))]


def strip(data: bytes, ranges: list[tuple[int, int]]) -> bytes:
    """``data`` without the byte ranges (start, end) — a launcher's own report in a stream."""
    out, pos = [], 0
    for start, end in sorted(ranges):
        out.append(data[pos:start])
        pos = max(pos, end)
    out.append(data[pos:])
    return b"".join(out)


def _settle(p: Proc, sent: int | None) -> tuple[int | None, int | None]:
    """A process's (exit code, signal) from its own exit record and its parent's wait.

    A process whose exit record has no code died of a signal: the one the kernel's exit record names (the
    task's exit_code), else the one its parent's wait reported, else the last one a traced process sent it
    (``kill``; a wait with a NULL status pointer reports nothing, and older agents' records name no signal)."""
    if p.exited and p.own_code is None:
        if p.own_signal is not None:
            return None, p.own_signal
        return None, p.wait_signal if p.wait_signal is not None else sent
    if p.own_code is not None:
        return p.own_code, None
    if p.wait_signal is not None:
        return None, p.wait_signal
    return p.wait_code, None


def _exit_status(ex: Extraction, roots: list[Key], harness_code: int | None) -> tuple[int | None, int | None]:
    """(code, signal) of the program under test (launchers looked through, so ``sh -c`` relaying a death by
    signal as 128 + n still reads as the signal). ``harness_code`` is the shell-style code the capture saw."""
    prog = ex.obs.programs
    if prog is None or len(roots) != 1:
        return harness_code, None
    p = ex.procs.get(prog.key)
    if p is None:
        return harness_code, None
    if prog.key == roots[0]:  # not reaped by a traced parent: an exit without exit_group is a death by signal
        if p.exited and p.exit_code is None and harness_code is not None and harness_code > 128:
            return None, harness_code - 128
        return (harness_code if harness_code is not None else p.exit_code), p.signal
    if p.signal is not None:
        return None, p.signal
    return (p.exit_code if p.exit_code is not None else harness_code), None


def _key(obs: Obs, host: str, rel: str) -> str:
    return f"{host}: {rel}" if len(obs.hosts) > 1 else rel


def edge_roles(trace: UnifiedTrace, root: tuple[str, int], workdir: str = "") -> list[tuple[str, str, str]]:
    """The distinct data-flow edges (pipe, TCP) between process roles: "root" for the program under test,
    the normalised argv for the others. Distinct, not counted: how many writes carry the data is buffering."""
    role_of: dict[bytes, str] = {}
    for key, p in trace.processes.items():
        name = "root" if key == root else " ".join(a.replace(workdir, ".") if workdir else a for a in p.argv)
        for e in p.events:
            role_of[e.h.event_id] = name
    out = {(e.kind.name, role_of[e.src], role_of[e.dst]) for e in trace.edges
           if e.kind in (EdgeKind.PIPE, EdgeKind.TCP) and e.src in role_of and e.dst in role_of
           and role_of[e.src] != role_of[e.dst]}
    return sorted(out)
