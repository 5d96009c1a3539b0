/* Translation of udpstats.py; the greetings go through a connect()ed socket with send(2) where Python uses
 * sendto(2), and the counter through a separate socket (not observable). -DBROKEN: the counter goes to port
 * 8126 instead of 8125. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    char names[64][64]; int n = 0; char line[256];
    FILE *in = fopen("names.txt", "r");
    while (n < 64 && fgets(line, sizeof line, in)) {
        char *s = line; while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, " \t\r\n")] = 0;
        if (*s) snprintf(names[n++], sizeof names[0], "%s", s);
    }
    fclose(in);
    int rx = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(rx, (struct sockaddr *)&a, sizeof a);
    getsockname(rx, (struct sockaddr *)&a, &al);
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    connect(tx, (struct sockaddr *)&a, sizeof a);
    char msg[128];
    for (int i = 0; i < n; i++) send(tx, msg, snprintf(msg, sizeof msg, "hello %s", names[i]), 0);
    for (int i = 0; i < n; i++) {
        ssize_t r = recvfrom(rx, msg, sizeof msg - 1, 0, NULL, NULL);
        msg[r] = 0; printf("%s\n", msg);
    }
    fflush(stdout);
    int stats = socket(AF_INET, SOCK_DGRAM, 0);
#ifdef BROKEN
    struct sockaddr_in sd = {.sin_family = AF_INET, .sin_port = htons(8126), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
#else
    struct sockaddr_in sd = {.sin_family = AF_INET, .sin_port = htons(8125), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
#endif
    int m = snprintf(msg, sizeof msg, "greeted:%d|c", n);
    sendto(stats, msg, m, 0, (struct sockaddr *)&sd, sizeof sd);
    return 0;
}
