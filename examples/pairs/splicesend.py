"""Sends input.txt to a loopback TCP server thread of this program (port chosen by the kernel) behind a
length header ("LEN 0072\n"), with socket.sendfile; prints the server's acknowledgement."""
import os
import socket
import threading

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)


def serve() -> None:
    conn, _ = srv.accept()
    with conn:
        n = 0
        while chunk := conn.recv(4096):
            n += len(chunk)
        conn.sendall(b"got %d bytes\n" % n)


t = threading.Thread(target=serve)
t.start()
cli = socket.create_connection(srv.getsockname())
with open("input.txt", "rb") as f:
    cli.sendall(b"LEN %04d\n" % os.fstat(f.fileno()).st_size)
    cli.sendfile(f)
cli.shutdown(socket.SHUT_WR)
print(cli.recv(4096).decode(), end="")
cli.close()
t.join()
srv.close()
