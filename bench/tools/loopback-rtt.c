/*
 * The floor under any RPC between two processes on this machine: a TCP round trip over
 * loopback with nothing on top (no HTTP/2, no protobuf, no threads hand-offs), between a parent
 * and a forked child. "blocking" sleeps in read() like an idle server does (each message then
 * wakes a sleeping thread); "spinning" polls without sleeping, which shows what the wake-ups cost.
 *
 *   cc -O2 -o /tmp/loopback-rtt bench/tools/loopback-rtt.c && /tmp/loopback-rtt [ROUNDS] [BYTES]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Receives exactly `size` bytes; spinning polls with MSG_DONTWAIT instead of sleeping. */
static int receive_all(int fd, char *buffer, int size, int spin) {
    int got = 0;
    while (got < size) {
        ssize_t n = recv(fd, buffer + got, (size_t)(size - got), spin ? MSG_DONTWAIT : 0);
        if (n == 0) return -1;
        if (n > 0) got += (int)n;
    }
    return 0;
}

static void no_delay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static double measure(int rounds, int size, int spin) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &length) != 0) {
        perror("loopback socket");
        exit(1);
    }
    char *buffer = calloc(1, (size_t)size);
    pid_t child = fork();
    if (child == 0) {
        int peer = accept(listener, NULL, NULL);
        no_delay(peer);
        while (receive_all(peer, buffer, size, spin) == 0) {
            if (send(peer, buffer, (size_t)size, 0) != size) break;
        }
        _exit(0);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        perror("connect");
        exit(1);
    }
    no_delay(fd);
    for (int i = 0; i < rounds / 10; i++) {
        send(fd, buffer, (size_t)size, 0);
        receive_all(fd, buffer, size, spin);
    }
    double start = now_seconds();
    for (int i = 0; i < rounds; i++) {
        send(fd, buffer, (size_t)size, 0);
        receive_all(fd, buffer, size, spin);
    }
    double elapsed = now_seconds() - start;
    close(fd);
    close(listener);
    waitpid(child, NULL, 0);
    free(buffer);
    return elapsed / rounds * 1e6;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20000;
    int size = argc > 2 ? atoi(argv[2]) : 1536;
    printf("loopback TCP round trip, %d bytes each way, %d rounds\n", size, rounds);
    printf("  blocking: %.1f us\n", measure(rounds, size, 0));
    printf("  spinning: %.1f us\n", measure(rounds, size, 1));
    return 0;
}
