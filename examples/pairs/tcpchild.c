/* Translation of tcpchild.py; the client sends the request line and the headers with two write(2) calls
 * (not observable). -DBROKEN: the request says HTTP/1.1 instead of HTTP/1.0: same length, so stdout is the
 * same, but the bytes on the connection and server.log differ. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(srv, (struct sockaddr *)&a, sizeof a); listen(srv, 1);
    getsockname(srv, (struct sockaddr *)&a, &al);
    pid_t pid = fork();
    if (pid == 0) {
        int c = accept(srv, NULL, NULL); close(srv);
        char req[4096]; size_t n = 0; ssize_t r;
        while ((r = read(c, req + n, sizeof req - n)) > 0) n += r;
        FILE *f = fopen("server.log", "wb"); fwrite(req, 1, n, f); fclose(f);
        char ans[64]; int m = snprintf(ans, sizeof ans, "OK %zu\n", n);
        write(c, ans, m); close(c);
        _exit(0);
    }
    close(srv);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
#ifdef BROKEN
    const char *line = "GET /names.txt HTTP/1.1\r\n";
#else
    const char *line = "GET /names.txt HTTP/1.0\r\n";
#endif
    const char *hdrs = "Host: localhost\r\n\r\n";
    write(c, line, strlen(line)); write(c, hdrs, strlen(hdrs));
    shutdown(c, SHUT_WR);
    char resp[256]; size_t n = 0; ssize_t r;
    while ((r = read(c, resp + n, sizeof resp - n)) > 0) n += r;
    close(c);
    waitpid(pid, NULL, 0);
    fwrite(resp, 1, n, stdout);
    return 0;
}
