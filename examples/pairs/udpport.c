/* udpport.py in C: connect() the datagram socket, then send(); the broken variant sends to port 40008 (the
   same ephemeral-range class, a different port the program chose) while printing the same line. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef BROKEN
#define PORT 40008
#else
#define PORT 40007
#endif

int main(void) {
    const char *message = "jobs.done:3|c";
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(PORT);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to) < 0 || send(s, message, strlen(message), 0) < 0) {
        perror("udpport");
        return 1;
    }
    close(s);
    printf("sent %s to 127.0.0.1:40007\n", message);
    return 0;
}
