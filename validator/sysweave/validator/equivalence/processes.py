"""Process roles and launcher transparency (pure): which process is "the program", which programs it starts.

docs/equivalence.md, "Launchers are transparent". From the process events of a run and the set of processes
that had effects of their own, :func:`program_tree` builds the tree of **visible programs**:

* a process is named by its **final image** (exec chains: ``env python3 x.py``, a ``#!/usr/bin/env bash``
  version-manager shim that ends in ``exec python3.11 x.py``, ``sh -c 'exec ...'``);
* a **fork wrapper** (no output or network of its own — opening files for the child's redirections is
  allowed —, exactly one child that runs the command it was given, the child's exit status relayed) is
  replaced by that child: ``sh -c 'python3 x.py'``, ``sh -c 'wc -l < in.txt'``, ``nohup``, ``timeout``;
* children forked **before** a process's final exec belong to its launcher images (a shim's command
  substitutions); they are **helpers**, dropped, when their whole subtree had no effects;
* children forked by the final image are the program's own: visible programs whatever their effects
  (``sort`` fed through pipes); a child that never execs is part of its parent (its children are the
  parent's).

Roles: :func:`role` normalises an argv (basename of argv[0] without a trailing version, workdir paths as
``./x``), so ``/root/.pyenv/versions/3.11.7/bin/python3.11`` and ``python3`` are both ``python``.

Worked example (a pyenv-like shim: pid 1 execs bash, forks a helper 2 that only reads, then execs python)::

    >>> p = Proc(("h", 1), images=[(0, ("python3", "x.py")), (1, ("bash", "/shims/python3", "x.py")),
    ...                            (5, ("/v/3.11/bin/python3.11", "x.py"))], exit_code=0)
    >>> helper = Proc(("h", 2), parent=("h", 1), fork_ns=2, images=[(3, ("pyenv-version-name",))], exit_code=0)
    >>> sorter = Proc(("h", 3), parent=("h", 1), fork_ns=9, images=[(10, ("/usr/bin/sort",))], exit_code=0)
    >>> p.children = [("h", 2), ("h", 3)]
    >>> tree = program_tree({("h", 1): p, ("h", 2): helper, ("h", 3): sorter}, ("h", 1), effects={("h", 1)})
    >>> tree.key, tree.role, [c.role for c in tree.children]
    (('h', 1), ('python', 'x.py'), [('sort',)])
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field

__all__ = ["Proc", "ProgramNode", "helpers", "program_tree", "role"]

Key = tuple[str, int]  # (host, pid)
_VERSION = re.compile(r"^(?P<name>[A-Za-z][A-Za-z_+-]{2,}?)[-]?\d+(\.\d+)*[a-z]?$")


@dataclass
class Proc:
    """One process of a run: its exec images in order ``(mono_ns, argv)``, its parent and children."""

    key: Key
    parent: Key | None = None
    fork_ns: int = 0
    images: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    children: list[Key] = field(default_factory=list)
    exit_code: int | None = None  # the settled status (settle._settle): a code, or None and a signal
    signal: int | None = None
    exited: bool = False  # an exit record was seen
    own_code: int | None = None  # from its exit record (None at exit: killed by a signal)
    own_signal: int | None = None  # the signal it died of, from the kernel's exit record (agents that have it)
    wait_code: int | None = None  # what its parent's wait reported
    wait_signal: int | None = None
    fork_event: bytes = b""  # event id of the fork that made it (for ordering reports)

    @property
    def final_ns(self) -> int:
        return self.images[-1][0] if self.images else self.fork_ns

    @property
    def argv(self) -> tuple[str, ...]:
        return self.images[-1][1] if self.images else ()


@dataclass
class ProgramNode:
    """A visible program: the process it resolved to, its role, exit status and the programs it starts."""

    key: Key
    role: tuple[str, ...]
    exit_code: int | None
    signal: int | None
    children: list[ProgramNode] = field(default_factory=list)
    via: list[Key] = field(default_factory=list)  # the wrapper processes looked through

    @property
    def pid(self) -> int:
        return self.key[1]


def program_name(argv0: str) -> str:
    """'/root/.pyenv/versions/3.11.7/bin/python3.11' -> 'python'; 'sort' -> 'sort'; 'md5sum' stays."""
    base = os.path.basename(argv0)
    m = _VERSION.match(base)
    return m.group("name") if m else base


def role(argv: tuple[str, ...] | list[str], workdir: str = "") -> tuple[str, ...]:
    """An argv as a role: program name, then the arguments with the run's workdir spelled ``.``.

    >>> role(("/usr/bin/python3.11", "/w/run1/in.txt", "-n"), "/w/run1")
    ('python', './in.txt', '-n')
    """
    if not argv:
        return ()
    args = []
    for a in argv[1:]:
        if workdir and workdir in a:
            a = a.replace(workdir + "/", "./").replace(workdir, ".")
        args.append(a)
    return (program_name(argv[0]), *args)


def _words(s: str) -> list[str]:
    try:
        return shlex.split(s)
    except ValueError:
        return s.split()


def _wraps(wrapper: tuple[str, ...], asked: tuple[str, ...]) -> bool:
    """Did ``wrapper`` (an argv) ask for ``asked`` (the child's first argv)? As arguments (``nohup cmd a``,
    a shim's "$@") or inside a command string (``sh -c 'cmd a'``)."""
    if not asked:
        return False
    rest, tail, name = list(wrapper[1:]), list(asked[1:]), os.path.basename(asked[0])
    n = len(tail) + 1
    if len(rest) >= n and rest[len(rest) - n + 1:] == tail and os.path.basename(rest[len(rest) - n]) == name:
        return True  # the wrapper's argv ends with the command: nohup/timeout/sudo CMD ARGS, a shim's "$@"
    for s in rest:
        words = _words(s)
        if (len(words) > 1 or " " in s) and any(os.path.basename(w) == name for w in words) and \
                all(t in words for t in tail):
            return True  # inside a command string: sh -c 'CMD ARGS'
    return False


def _subtree_has_effects(procs: dict[Key, Proc], key: Key, effects: set[Key]) -> bool:
    stack, seen = [key], set()
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        if k in effects:
            return True
        p = procs.get(k)
        if p is not None:
            stack.extend(p.children)
    return False


def helpers(procs: dict[Key, Proc], root: Key, effects: set[Key]) -> set[Key]:
    """Processes forked by launcher images (before their parent's final exec) whose subtree has no effects,
    with all their descendants: their reads and plumbing are the launcher's business, not the program's."""
    out: set[Key] = set()
    for p in procs.values():
        for c in p.children:
            child = procs.get(c)
            if child is not None and p.images and child.fork_ns < p.final_ns and \
                    not _subtree_has_effects(procs, c, effects):
                stack = [c]
                while stack:
                    k = stack.pop()
                    if k not in out:
                        out.add(k)
                        stack.extend(procs[k].children if k in procs else [])
    return out


def _resolve(procs: dict[Key, Proc], key: Key, effects: set[Key], helper: set[Key],
             direct: set[Key]) -> tuple[Key, list[Key]]:
    """Follow fork wrappers down to the program they run; returns (program, wrappers looked through)."""
    via: list[Key] = []
    while True:
        p = procs[key]
        kids = [c for c in p.children if c in procs and c not in helper and procs[c].fork_ns >= p.final_ns]
        if key in direct or not p.images:
            return key, via
        # the one child running the command the wrapper was given; any other child must be a quiet helper
        real = [c for c in kids if procs[c].images and _wraps(p.argv, procs[c].images[0][1])]
        if len(real) != 1:
            return key, via
        child = procs[real[0]]
        relayed = p.exit_code is None or child.exit_code is None or p.exit_code == child.exit_code or (
            child.signal is not None and p.exit_code == 128 + child.signal)
        others_quiet = all(not _subtree_has_effects(procs, c, effects) for c in kids if c != real[0])
        if not (relayed and others_quiet):
            return key, via
        via.append(key)
        key = real[0]


def _program_image(p: Proc, first_output: int | None) -> int:
    """Which of a process's images is the program: the one that first had output of its own (images before
    it are launchers: env, shims, exec in sh -c); the last one when none had any."""
    if first_output is None or not p.images:
        return max(len(p.images) - 1, 0)
    k = 0
    for i, (start, _argv) in enumerate(p.images):
        if start <= first_output:
            k = i
    return k


def _launches_several(procs: dict[Key, Proc], key: Key, effects: set[Key], helper: set[Key],
                      direct: set[Key]) -> list[Key]:
    """The children of a process that only launches several commands it was given in a command string
    (``sh -c 'tr a b < in | sort > out'``: no output of its own, every child's command named in its argv);
    [] when it is anything else."""
    p = procs[key]
    if key in direct or not p.images:
        return []
    kids = [c for c in p.children if c in procs and c not in helper and procs[c].fork_ns >= p.final_ns]
    named = [c for c in kids if procs[c].images and _wraps(p.argv, procs[c].images[0][1])]
    if len(named) < 2 or any(_subtree_has_effects(procs, c, effects) for c in kids if c not in named):
        return []
    return named


def program_tree(procs: dict[Key, Proc], root: Key, effects: set[Key], workdir: str = "",
                 direct: set[Key] | None = None, first_output: dict[Key, int] | None = None) -> ProgramNode:
    """The visible-program tree of a run from its root process; see the module docstring.

    ``effects``: processes with effects of their own; ``direct``: those whose effects are output (stdout,
    stderr, network) rather than files opened for a child (default: all of ``effects``)."""
    direct = effects if direct is None else direct
    first_output = first_output or {}
    helper = helpers(procs, root, effects)

    def node(key: Key, depth: int = 0) -> ProgramNode:
        prog, via = _resolve(procs, key, effects, helper, direct)
        p = procs[prog]
        top = procs[key]
        code = top.exit_code if top.exit_code is not None else p.exit_code
        sig = top.signal if top.signal is not None else p.signal
        k = _program_image(p, first_output.get(prog))
        n = ProgramNode(prog, role(p.images[k][1] if p.images else (), workdir), code, sig, via=via)
        for _t, argv in p.images[k + 1:]:  # exec'd after the program had output: programs it started in place
            n.children.append(ProgramNode(prog, role(argv, workdir), code, sig))
        if depth > 200:
            return n
        pending = list(p.children)
        while pending:
            c = pending.pop(0)
            if c not in procs or c in helper:
                continue
            child = procs[c]
            if not child.images:  # a fork that never execs is part of its parent program
                pending[0:0] = child.children
                continue
            spliced = _launches_several(procs, c, effects, helper, direct)
            if spliced:  # sh -c 'a | b': the shell is a launcher, its programs are the parent's
                pending[0:0] = spliced
                continue
            n.children.append(node(c, depth + 1))
        return n

    return node(root)
