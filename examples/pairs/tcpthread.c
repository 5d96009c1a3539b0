/* Translation of tcpthread.py with a pthread server; the client sends in 8-byte chunks and the server
 * replies in 5-byte chunks (chunking is not observable). -DBROKEN: the client drops the last byte of
 * input.txt (the final newline), so reply.txt is one byte short. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
static int srv;
static void *serve(void *arg) {
    (void)arg;
    int c = accept(srv, NULL, NULL);
    static char data[1 << 16]; size_t n = 0; ssize_t r;
    while ((r = recv(c, data + n, sizeof data - n, 0)) > 0) n += r;
    for (size_t i = 0; i < n; i++) data[i] = toupper((unsigned char)data[i]);
    for (size_t off = 0; off < n; off += 5) send(c, data + off, n - off < 5 ? n - off : 5, 0);
    close(c);
    return NULL;
}
int main(void) {
    srv = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(srv, (struct sockaddr *)&a, sizeof a); listen(srv, 1);
    getsockname(srv, (struct sockaddr *)&a, &al);
    pthread_t t; pthread_create(&t, NULL, serve, NULL);
    static char buf[1 << 16];
    FILE *in = fopen("input.txt", "rb"); size_t n = fread(buf, 1, sizeof buf, in); fclose(in);
#ifdef BROKEN
    n -= 1;
#endif
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
    for (size_t off = 0; off < n; off += 8) send(c, buf + off, n - off < 8 ? n - off : 8, 0);
    shutdown(c, SHUT_WR);
    static char reply[1 << 16]; size_t got = 0; ssize_t r;
    while ((r = recv(c, reply + got, sizeof reply - got, 0)) > 0) got += r;
    close(c);
    pthread_join(t, NULL); close(srv);
    FILE *out = fopen("reply.txt", "wb"); fwrite(reply, 1, got, out); fclose(out);
    return 0;
}
