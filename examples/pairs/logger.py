"""Write app.log with 500 unbuffered os.write calls, one per line ("001 tick\n" ... "500 tick\n")."""
import os

fd = os.open("app.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for i in range(1, 501):
    os.write(fd, f"{i:03d} tick\n".encode())
os.close(fd)
