"""splice/tee/vmsplice to a socket compared by the bytes moved (issue 17.5), with real eBPF: a C program moves
data through pipes to a TCP connection and a UDP socket of the test's own servers — bytes written into a pipe,
file ranges spliced in (the file's position and an offset pointer), vmsplice'd memory, a tee'd copy. The same
bytes are EQUIVALENT; one byte different in any of them is DIVERGENT naming that byte; a file the run changed
before splicing from it cannot be known: "could not decide", not a verdict by length."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
# variant -> the C defines that make it differ from the original "a" (same: none)
VARIANTS = {"a": [], "same": [], "write": ["-DCH='0'"], "filepos": ["-DPOS=1"], "vmsplice": ["-DVCH='V'"],
            "tee": ["-DTCH='T'"], "udp": ["-DUCH='H'"], "change": ["-DCHANGE"],
            "far": ["-DPOS=100000"], "far-same": ["-DPOS=100000"], "far-next": ["-DPOS=100001"]}
# a data.txt far larger than the 64 KiB of content a final state keeps: ranges past it are read back from disk
BIG = b"hello world\n" + bytes(range(256)) * 800


class Servers:
    """A TCP and a UDP server on loopback (outside the traced tree): what the runs send, as received."""

    def __init__(self) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.streams: list[bytes] = []
        self.datagrams: list[bytes] = []
        for loop in (self._accept, self._recv):
            threading.Thread(target=loop, daemon=True).start()

    @property
    def ports(self) -> list[str]:
        return [str(self.tcp.getsockname()[1]), str(self.udp.getsockname()[1])]

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the fixture closed the socket: the module's tests are done
            while True:
                c, _ = self.tcp.accept()
                with c:
                    data = b""
                    while chunk := c.recv(4096):
                        data += chunk
                self.streams.append(data)

    def _recv(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.datagrams.append(self.udp.recv(4096))


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("splice")
    (d / "sp.c").write_text(C_PROGRAM)
    for name, defines in VARIANTS.items():
        subprocess.run(["cc", "-O2", "-w", *defines, "-o", str(d / name), str(d / "sp.c")], check=True)
    return d


@pytest.fixture(scope="module")
def stdin_programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("splice-stdin")
    (d / "st.c").write_text(STDIN_PROGRAM)
    for name, skip in (("a", 2), ("same", 2), ("next", 1)):
        subprocess.run(["cc", "-O2", "-w", f"-DSKIP={skip}", "-o", str(d / name), str(d / "st.c")], check=True)
    (d / "in.txt").write_text("hello world\n")
    return d


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    s = Servers()
    yield s
    s.tcp.close()
    s.udp.close()


def _validate(programs: Path, servers: Servers, a: str, b: str, data: bytes = b"hello world\n") -> tuple[int, dict]:
    work = programs / f"work-{b}"
    work.mkdir(exist_ok=True)
    (work / "data.txt").write_bytes(data)
    r = subprocess.run([*SYSWEAVE, "validate", "--original", str(programs / a), "--transpiled", str(programs / b),
                        "--workdir", str(work), "--json", "--no-store", "--", *servers.ports],
                       capture_output=True, text=True, timeout=300)
    return r.returncode, json.loads(r.stdout)


def test_same_bytes_through_pipes_are_equivalent(programs: Path, servers: Servers) -> None:
    code, report = _validate(programs, servers, "a", "same")
    assert (code, report["verdict"]) == (0, "equivalent"), report["reason"]
    # what the programs moved, as the server got it: the comparison had these bytes, not only their length
    assert servers.streams[-1] == b"hello world\nllo wellovmsplice!\ntee me\ntee me\n"
    assert servers.datagrams[-1] == b"hello world\n"


@pytest.mark.parametrize(("variant", "where"), [
    ("write", "byte 4 of conversation:stream"),  # written into the pipe, spliced out
    ("filepos", "byte 12 of conversation:stream"),  # spliced from the file at its position
    ("vmsplice", "byte 21 of conversation:stream"),
    ("tee", "byte 31 of conversation:stream"),  # the tee'd copy goes out first
    ("udp", "datagram 0"),
])
def test_one_byte_different_is_divergent_naming_it(programs: Path, servers: Servers, variant: str, where: str) -> None:
    code, report = _validate(programs, servers, "a", variant)
    assert (code, report["verdict"]) == (1, "divergent"), report["reason"]
    assert where in report["reason"], report["reason"]


def test_a_range_past_the_content_kept_is_read_back(programs: Path, servers: Servers) -> None:
    """5 bytes spliced from offset 100,000 of a 200 KiB file: compared by their bytes, not undecided."""
    code, report = _validate(programs, servers, "far", "far-same", BIG)
    assert (code, report["verdict"]) == (0, "equivalent"), report["reason"]
    code, report = _validate(programs, servers, "far", "far-next", BIG)
    assert (code, report["verdict"]) == (1, "divergent"), report["reason"]
    assert "byte 12 of conversation:stream" in report["reason"], report["reason"]


def test_stdin_spliced_to_a_socket_is_compared_by_its_bytes(stdin_programs: Path, servers: Servers) -> None:
    """splice(0 -> pipe -> socket) of the --stdin file: its bytes come from the case's stdin at fd 0's position."""
    def run(b: str) -> tuple[int, dict]:
        r = subprocess.run([*SYSWEAVE, "validate", "--original", str(stdin_programs / "a"), "--transpiled",
                            str(stdin_programs / b), "--stdin", str(stdin_programs / "in.txt"), "--workdir",
                            str(stdin_programs), "--json", "--no-store", "--", servers.ports[0]],
                           capture_output=True, text=True, timeout=300)
        return r.returncode, json.loads(r.stdout)
    code, report = run("same")
    assert (code, report["verdict"]) == (0, "equivalent"), report["reason"]
    assert servers.streams[-1] == b"llo w"
    code, report = run("next")  # 'ello ': same length
    assert (code, report["verdict"]) == (1, "divergent"), report["reason"]
    assert "byte 0 of conversation:stream" in report["reason"], report["reason"]


def test_a_file_the_run_changed_cannot_be_known(programs: Path, servers: Servers) -> None:
    code, report = _validate(programs, servers, "change", "change")
    assert (code, report["verdict"]) == (2, "undecided"), report["reason"]
    assert "changed the file it moved bytes from" in report["reason"], report["reason"]


C_PROGRAM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#ifndef CH
#define CH 'o'
#endif
#ifndef POS
#define POS 2
#endif
#ifndef VCH
#define VCH 'v'
#endif
#ifndef TCH
#define TCH 't'
#endif
#ifndef UCH
#define UCH 'h'
#endif
static void die(const char *what) { perror(what); exit(3); }
static void to(int p_out, int sock, ssize_t n) {
    while (n > 0) {
        ssize_t k = splice(p_out, NULL, sock, NULL, (size_t)n, 0);
        if (k <= 0) die("splice to the socket");
        n -= k;
    }
}
static int sock_to(int type, int port) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    int s = socket(AF_INET, type, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
    return s;
}
int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: sp TCP_PORT UDP_PORT\n"); return 2; }
    int tcp = sock_to(SOCK_STREAM, atoi(argv[1])), udp = sock_to(SOCK_DGRAM, atoi(argv[2]));
    int p[2], q[2];
    if (pipe(p) || pipe(q)) die("pipe");
    char msg[] = "hello world\n";                      /* 1: written into the pipe, spliced out */
    msg[4] = CH;
    if (write(p[1], msg, 12) != 12) die("write");
    to(p[0], tcp, 12);
    int fd = open("data.txt", O_RDONLY);                 /* 2: a file range spliced in (file position) */
    if (fd < 0 || lseek(fd, POS, SEEK_SET) < 0) die("data.txt");
    if (splice(fd, NULL, p[1], NULL, 5, 0) != 5) die("splice from the file");
    to(p[0], tcp, 5);
    loff_t off = 1;                                      /* 3: ... and from an offset pointer */
    if (splice(fd, &off, p[1], NULL, 4, 0) != 4) die("splice from the file at an offset");
    to(p[0], tcp, 4);
    char vm[] = "vmsplice!\n";                           /* 4: user memory into the pipe */
    vm[0] = VCH;
    struct iovec iov = {vm, 10};
    if (vmsplice(p[1], &iov, 1, 0) != 10) die("vmsplice");
    to(p[0], tcp, 10);
    char t[] = "tee me\n";                               /* 5: tee copies, then both copies go out */
    t[0] = TCH;
    if (write(p[1], t, 7) != 7 || tee(p[0], q[1], 7, 0) != 7) die("tee");
    to(q[0], tcp, 7);
    to(p[0], tcp, 7);
#ifdef CHANGE
    int w = open("data.txt", O_WRONLY | O_APPEND);       /* the run changes the file it splices from */
    if (w < 0 || write(w, "!", 1) != 1) die("append");
#endif
    msg[0] = UCH;                                        /* 6: a datagram spliced from a pipe */
    if (write(p[1], msg, 12) != 12) die("write");
    if (splice(p[0], NULL, udp, NULL, 12, 0) != 12) die("splice to UDP");
    close(tcp);
    puts("moved");
    return 0;
}
"""

STDIN_PROGRAM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    int s = socket(AF_INET, SOCK_STREAM, 0), p[2];
    if (argc < 2 || connect(s, (struct sockaddr *)&a, sizeof a) || pipe(p)) return 3;
    if (lseek(0, SKIP, SEEK_SET) != SKIP || splice(0, NULL, p[1], NULL, 5, 0) != 5) return 4;
    if (splice(p[0], NULL, s, NULL, 5, 0) != 5) return 5;
    close(s);
    return 0;
}
"""
