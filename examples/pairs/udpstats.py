"""Send one UDP greeting per name to a loopback receiver socket of this program, print what it receives, and
report a statsd-style counter to 127.0.0.1:8125 (fire and forget: nobody need listen)."""
import socket

names = [n.strip() for n in open("names.txt") if n.strip()]
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", 0))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for n in names:
    tx.sendto(f"hello {n}".encode(), rx.getsockname())
for _ in names:
    data, _ = rx.recvfrom(2048)
    print(data.decode())
tx.sendto(f"greeted:{len(names)}|c".encode(), ("127.0.0.1", 8125))
