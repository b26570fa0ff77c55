// exec-time: runs a command RUNS times (stdout and stderr to /dev/null) and prints the wall time of each
// fork+exec+wait in microseconds, sorted, one line: "min p50 p90 max". Exits non-zero if any run fails.
//   exec-time RUNS WARMUP cmd [args...]
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int run_once(char **argv, long long *elapsed) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    long long start = now_usec();
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ) != 0) return -1;
    int status = 0;
    waitpid(pid, &status, 0);
    *elapsed = now_usec() - start;
    posix_spawn_file_actions_destroy(&actions);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: exec-time RUNS WARMUP cmd [args...]\n");
        return 2;
    }
    int runs = atoi(argv[1]), warmup = atoi(argv[2]);
    long long *times = calloc((size_t)runs, sizeof *times);
    long long t;
    for (int i = 0; i < warmup; i++)
        if (run_once(argv + 3, &t) != 0) { fprintf(stderr, "exec-time: %s failed\n", argv[3]); return 1; }
    for (int i = 0; i < runs; i++)
        if (run_once(argv + 3, &times[i]) != 0) { fprintf(stderr, "exec-time: %s failed\n", argv[3]); return 1; }
    qsort(times, (size_t)runs, sizeof *times, cmp);
    printf("%lld %lld %lld %lld\n", times[0], times[runs / 2], times[(runs * 9) / 10], times[runs - 1]);
    return 0;
}
