"""Upper-case input.txt through a loopback TCP server running in a thread of this program (port chosen by
the kernel); the client writes the reply to reply.txt."""
import socket
import threading

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)


def serve() -> None:
    conn, _ = srv.accept()
    with conn:
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
        conn.sendall(data.upper())


t = threading.Thread(target=serve)
t.start()
cli = socket.create_connection(srv.getsockname())
cli.sendall(open("input.txt", "rb").read())
cli.shutdown(socket.SHUT_WR)
reply = b""
while chunk := cli.recv(4096):
    reply += chunk
cli.close()
t.join()
srv.close()
with open("reply.txt", "wb") as f:
    f.write(reply)
