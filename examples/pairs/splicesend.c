/* Translation of splicesend.py that moves every byte through a pipe inside the kernel: the header is
 * written into the pipe, input.txt spliced into it through an offset pointer, and the pipe spliced to the
 * socket (splice vs sendall/sendfile is not observable: the connection carries the same bytes).
 * -DBROKEN: the header's length is printed in hex ("LEN 0048" for 72): same length, same acknowledgement,
 * same stdout; different bytes on the connection. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef BROKEN
#define LEN_FORMAT "LEN %04x\n"
#else
#define LEN_FORMAT "LEN %04d\n"
#endif
static int srv;
static void *serve(void *arg) {
    (void)arg;
    int c = accept(srv, NULL, NULL);
    char buf[4096]; long n = 0; ssize_t r;
    while ((r = read(c, buf, sizeof buf)) > 0) n += r;
    int k = snprintf(buf, sizeof buf, "got %ld bytes\n", n);
    write(c, buf, (size_t)k);
    close(c);
    return NULL;
}
static int drain(int from, int to, ssize_t n) {  /* splice n bytes out of the pipe */
    while (n > 0) {
        ssize_t k = splice(from, NULL, to, NULL, (size_t)n, SPLICE_F_MORE);
        if (k <= 0) return -1;
        n -= k;
    }
    return 0;
}
int main(void) {
    srv = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(srv, (struct sockaddr *)&a, sizeof a); listen(srv, 1);
    getsockname(srv, (struct sockaddr *)&a, &al);
    pthread_t t; pthread_create(&t, NULL, serve, NULL);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
    int fd = open("input.txt", O_RDONLY), p[2];
    struct stat st; fstat(fd, &st);
    if (pipe(p)) return 1;
    char hdr[32];
    int h = snprintf(hdr, sizeof hdr, LEN_FORMAT, (int)st.st_size);
    write(p[1], hdr, (size_t)h);
    if (drain(p[0], c, h)) return 1;
    ssize_t k;
    loff_t off = 0;  /* the file's offset kept here, not in the file */
    while ((k = splice(fd, &off, p[1], NULL, 4096, 0)) > 0)
        if (drain(p[0], c, k)) return 1;
    shutdown(c, SHUT_WR);
    char reply[128]; ssize_t got = read(c, reply, sizeof reply);
    if (got > 0) fwrite(reply, 1, (size_t)got, stdout);
    close(c);
    pthread_join(t, NULL);
    return 0;
}
