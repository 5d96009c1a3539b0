"""Write response.http, an HTTP/1.1 response carrying input.txt, with five unbuffered writes."""
body = open("input.txt", "rb").read()
with open("response.http", "wb", buffering=0) as f:
    f.write(b"HTTP/1.1 200 OK\r\n")
    f.write(b"Content-Type: text/plain\r\n")
    f.write(b"Content-Length: %d\r\n" % len(body))
    f.write(b"\r\n")
    f.write(body)
