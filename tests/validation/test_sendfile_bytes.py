"""sendfile to a socket compared by the bytes moved (issue 17.5): two programs that send the same number of
bytes of data.txt over loopback TCP, from different offsets, with nothing else different, diverge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
PROGRAM = '''
import os, socket, sys, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
def serve():
    c, _ = srv.accept()
    while c.recv(4096):
        pass
t = threading.Thread(target=serve); t.start()
cli = socket.create_connection(srv.getsockname())
with open("data.txt", "rb") as f:
    f.seek(SEEK)
    os.sendfile(cli.fileno(), f.fileno(), OFFSET, 5)
cli.close(); t.join(); print("sent 5 bytes")
'''


def _validate(tmp: Path, a: int | None, b: int | None, seek: tuple[int, int] = (0, 0)) -> dict:
    """``a``/``b``: the offset argument (None: the file's own position, after seeking to ``seek``)."""
    for name, off, pos in (("a.py", a, seek[0]), ("b.py", b, seek[1])):
        (tmp / name).write_text(PROGRAM.replace("OFFSET", str(off)).replace("SEEK", str(pos)))
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    (work / "data.txt").write_text("hello world\n")
    r = subprocess.run([*SYSWEAVE, "validate", "--original", f"{sys.executable} {tmp / 'a.py'}", "--transpiled",
                        f"{sys.executable} {tmp / 'b.py'}", "--workdir", str(work), "--json", "--no-store"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return json.loads(r.stdout)


def test_sendfile_bytes_moved_are_compared(tmp_path: Path) -> None:
    same = _validate(tmp_path, 2, 2)
    assert same["verdict"] == "equivalent", same["reason"]
    other = _validate(tmp_path, 2, 1)  # 'llo w' vs 'ello ': same length
    assert other["verdict"] == "divergent", other["reason"]
    assert "stream" in other["divergence"]["resource"]


def test_sendfile_null_offset_bytes_moved(tmp_path: Path) -> None:
    """sendfile(out, in, NULL, n) from the file's position (seeked to 2 vs 1): compared by the bytes moved."""
    src = tmp_path / "sf.c"
    src.write_text(C_PROGRAM)
    for name, pos in (("a", 2), ("b", 1), ("c", 2)):
        subprocess.run(["cc", "-O2", "-w", "-pthread", f"-DPOS={pos}", "-o", str(tmp_path / name), str(src)],
                       check=True)
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.txt").write_text("hello world\n")

    def run(x: str, y: str) -> dict:
        r = subprocess.run([*SYSWEAVE, "validate", "--original", str(tmp_path / x), "--transpiled", str(tmp_path / y),
                            "--workdir", str(work), "--json", "--no-store"], capture_output=True, text=True, timeout=300)
        assert r.returncode in (0, 1), r.stdout + r.stderr
        return json.loads(r.stdout)
    assert run("a", "c")["verdict"] == "equivalent"
    assert run("a", "b")["verdict"] == "divergent"


C_PROGRAM = r"""
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
static int srv;
static void *serve(void *arg) {
    char buf[64];
    int c = accept(srv, 0, 0);
    while (read(c, buf, sizeof buf) > 0) {}
    close(c);
    return arg;
}
int main(void) {
    struct sockaddr_in a = {0};
    socklen_t len = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv = socket(AF_INET, SOCK_STREAM, 0);
    bind(srv, (struct sockaddr *)&a, sizeof a);
    listen(srv, 1);
    getsockname(srv, (struct sockaddr *)&a, &len);
    pthread_t t;
    pthread_create(&t, 0, serve, 0);
    int cli = socket(AF_INET, SOCK_STREAM, 0);
    connect(cli, (struct sockaddr *)&a, sizeof a);
    int fd = open("data.txt", O_RDONLY);
    lseek(fd, POS, SEEK_SET);
    sendfile(cli, fd, NULL, 5);
    close(cli);
    pthread_join(t, 0);
    puts("sent 5 bytes");
    return 0;
}
"""
