/* Translation of udpchild.py; the child uses recv(2) and stdio, the parent sendmsg(2) (not observable).
 * -DBROKEN: "grace" goes out as two datagrams, "gr" and "ace"; the child joins them, so received.txt is the
 * same, but the messages on the wire differ (a datagram split in two is a different conversation). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
static void send_one(int tx, struct sockaddr_in *to, const char *s, size_t n) {
    struct iovec iov = {(void *)s, n};
    struct msghdr m = {.msg_name = to, .msg_namelen = sizeof *to, .msg_iov = &iov, .msg_iovlen = 1};
    sendmsg(tx, &m, 0);
}
int main(void) {
    int rx = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(rx, (struct sockaddr *)&a, sizeof a);
    getsockname(rx, (struct sockaddr *)&a, &al);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = fopen("received.txt", "wb");
        char buf[2048];
        for (;;) {
            ssize_t n = recv(rx, buf, sizeof buf, 0);
            if (n == 3 && memcmp(buf, "END", 3) == 0) break;
            fwrite(buf, 1, n, f);
#ifdef BROKEN
            if (n == 2 && memcmp(buf, "gr", 2) == 0) continue; /* the first half: no newline yet */
#endif
            fputc('\n', f);
        }
        fclose(f);
        _exit(0);
    }
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    FILE *in = fopen("names.txt", "r");
    char line[256];
    while (fgets(line, sizeof line, in)) {
        char *s = line; while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, " \t\r\n")] = 0;
        if (!*s) continue;
#ifdef BROKEN
        if (strcmp(s, "grace") == 0) { send_one(tx, &a, "gr", 2); send_one(tx, &a, "ace", 3); continue; }
#endif
        send_one(tx, &a, s, strlen(s));
    }
    fclose(in);
    send_one(tx, &a, "END", 3);
    waitpid(pid, NULL, 0);
    return 0;
}
