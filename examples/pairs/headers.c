/* Translation of headers.py: one writev(2) of five pieces where Python makes five write(2) calls (not
 * observable). -DBROKEN: the Content-Type header ends in "\n" instead of "\r\n" (one byte). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
int main(void) {
    static char body[1 << 16];
    int in = open("input.txt", O_RDONLY);
    ssize_t n = read(in, body, sizeof body);
    close(in);
    char len[64];
    snprintf(len, sizeof len, "Content-Length: %zd\r\n", n);
#ifdef BROKEN
    char *ctype = "Content-Type: text/plain\n";
#else
    char *ctype = "Content-Type: text/plain\r\n";
#endif
    struct iovec iov[5] = {
        {"HTTP/1.1 200 OK\r\n", 17}, {ctype, strlen(ctype)}, {len, strlen(len)}, {"\r\n", 2}, {body, (size_t)n},
    };
    int out = open("response.http", O_WRONLY | O_CREAT | O_TRUNC, 0666);
    writev(out, iov, 5);
    close(out);
    return 0;
}
