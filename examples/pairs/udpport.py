"""Reports a metric as a UDP datagram to a fixed collector port on loopback (40007, in the ephemeral range;
nothing needs to listen), then prints what it sent."""
import socket

message = b"jobs.done:3|c"
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.sendto(message, ("127.0.0.1", 40007))
print(f"sent {message.decode()} to 127.0.0.1:40007")
