"""Start a one-shot loopback TCP server in a forked child (it logs the request to server.log and answers
with its length), send it an HTTP-style request, print the answer."""
import os
import socket

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
pid = os.fork()
if pid == 0:
    conn, _ = srv.accept()
    srv.close()
    req = b""
    while chunk := conn.recv(1024):
        req += chunk
    with open("server.log", "wb") as f:
        f.write(req)
    conn.sendall(b"OK %d\n" % len(req))
    conn.close()
    os._exit(0)
addr = srv.getsockname()
srv.close()
cli = socket.create_connection(addr)
cli.sendall(b"GET /names.txt HTTP/1.0\r\nHost: localhost\r\n\r\n")
cli.shutdown(socket.SHUT_WR)
resp = b""
while chunk := cli.recv(1024):
    resp += chunk
cli.close()
os.waitpid(pid, 0)
print(resp.decode(), end="")
