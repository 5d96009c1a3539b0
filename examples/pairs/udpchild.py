"""A forked child receives UDP datagrams on loopback and writes their payloads to received.txt until "END";
the parent sends it the names of names.txt, one datagram per name."""
import os
import socket

rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", 0))
pid = os.fork()
if pid == 0:
    with open("received.txt", "wb") as f:
        while (data := rx.recvfrom(2048)[0]) != b"END":
            f.write(data + b"\n")
    os._exit(0)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for name in (n.strip() for n in open("names.txt")):
    if name:
        tx.sendto(name.encode(), rx.getsockname())
tx.sendto(b"END", rx.getsockname())
os.waitpid(pid, 0)
