"""``sysweave agent``: flags -> :class:`sysweave.agents.daemon.AgentConfig` -> the daemon.

    sysweave agent --kafka BOOTSTRAP [--host-id ID] [--all | --pid PID... | --cgroup PATH | -- CMD...]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from sysweave.agents.daemon import AgentConfig, run_agent
from sysweave.schemas.errors import AgentError

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kafka", required=True, metavar="BOOTSTRAP", help="HOST:PORT[,HOST:PORT...]")
    p.add_argument("--host-id", default=None, help="this host's id in traces (default: $SYSWEAVE_HOST_ID or hostname)")
    p.add_argument("--trace-label", default=os.environ.get("SYSWEAVE_TRACE_LABEL"),
                   help="partition key shared by every host of one job, so one worker assembles it")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--all", action="store_true", help="every process on the host (but the agent)")
    target.add_argument("--pid", type=int, nargs="+", default=[], help="running processes (every thread)")
    target.add_argument("--cgroup", metavar="PATH", help="every process in this cgroup v2 directory")
    p.add_argument("--metrics-addr", default="127.0.0.1", help="address of the Prometheus endpoint (0.0.0.0 in a pod)")
    p.add_argument("--metrics-port", type=int, default=9464, help="Prometheus metrics port (0: off)")
    p.add_argument("--spool", default=None, help="spool directory for Kafka outages (default: $XDG_STATE_HOME/sysweave/spool)")
    p.add_argument("--spool-max-mb", type=int, default=256)
    p.add_argument("--window-s", type=float, default=5.0, help="seconds per exact-aggregate window")
    p.add_argument("--slow-us", type=float, default=10.0)
    p.add_argument("--observable", action="store_true", help="ship all observable I/O (validation runs)")
    p.add_argument("--uprobe", action="append", default=[], metavar="[LIB:]FUNC[,FUNC..]|[LIB:]/REGEX/",
                   help="function probes as for 'sysweave trace --uprobe' (repeatable)")
    p.add_argument("--usdt", action="append", default=[], metavar="[LIB:]PROVIDER:NAME",
                   help="USDT probe hit counts as for 'sysweave trace --usdt' (repeatable)")
    p.add_argument("--compute-us", type=float, default=50.0, help="compute-block threshold in µs (default 50)")
    p.add_argument("--gpu", action="store_true", help="GPU layer: NVML samples, CUDA driver API probes, CUPTI hook")
    p.add_argument("--gpu-interval", type=float, default=100.0, metavar="MS", help="NVML sampling interval (default 100 ms)")
    p.add_argument("--cuda-lib", metavar="PATH", help="the libcuda to probe (default: libcuda.so.1 from the linker cache)")
    p.add_argument("--netns", default=None, metavar="NAME",
                   help="TEST FACILITY: the 'host' is a network namespace: report its addresses (and run CMD in it)")
    p.add_argument("--clock-offset-ns", type=int, default=0,
                   help="TEST FACILITY: add this to every wall timestamp (simulates a skewed host clock)")
    p.add_argument("--shutdown-timeout", type=float, default=10.0)
    p.add_argument("--no-sdk", action="store_true", help="no SDK socket ($SYSWEAVE_SDK_SOCKET) for the traced programs")
    p.add_argument("--decisions", metavar="FILE.jsonl",
                   help="a transpiler's decision log for CMD (schema: docs/sdk.md); bad lines are reported and skipped")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sysweave-agent %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not (command or args.pid or args.all or args.cgroup):
        print("sysweave agent: choose what to trace: --all, --pid PID..., --cgroup PATH, or -- CMD", file=sys.stderr)
        return 2
    cfg = AgentConfig(kafka=args.kafka, host_id=args.host_id or "", trace_label=args.trace_label, command=command,
                      pids=args.pid, all_processes=args.all, cgroup=args.cgroup, metrics_addr=args.metrics_addr,
                      metrics_port=args.metrics_port, spool_dir=args.spool, spool_max_mb=args.spool_max_mb,
                      window_s=args.window_s, slow_ns=int(args.slow_us * 1000), observable=args.observable,
                      uprobes=args.uprobe, usdt=args.usdt, compute_ns=int(args.compute_us * 1000), gpu=args.gpu,
                      gpu_interval_s=args.gpu_interval / 1000, cuda_lib=args.cuda_lib,
                      netns=args.netns, clock_offset_ns=args.clock_offset_ns, shutdown_timeout_s=args.shutdown_timeout,
                      sdk=not args.no_sdk, decisions=args.decisions)
    try:
        return run_agent(cfg)
    except (AgentError, OSError) as exc:
        print(f"sysweave agent: {exc}", file=sys.stderr)
        return 1
