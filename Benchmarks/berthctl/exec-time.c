// exec-time: times fork+exec+wait of commands (stdout and stderr to /dev/null), in microseconds.
//   exec-time RUNS WARMUP cmd [args...]
//       prints one line "min p50 p90 max" for the command.
//   exec-time RUNS WARMUP cmdA [args...] -- cmdB [args...]
//       paired: each round runs A then B (alternating which goes first), so both see the same load on a busy
//       machine; prints "min p50 p90 max" of A, of B, then the p50 of the per-round ratios A/B on a third line.
// Exits non-zero if any run fails.
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long long run_once(char **argv) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    long long start = now_usec();
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ) != 0) {
        fprintf(stderr, "exec-time: cannot run %s\n", argv[0]);
        exit(1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    long long elapsed = now_usec() - start;
    posix_spawn_file_actions_destroy(&actions);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "exec-time: %s failed\n", argv[0]);
        exit(1);
    }
    return elapsed;
}

static void print_stats(long long *times, int runs) {
    qsort(times, (size_t)runs, sizeof *times, cmp);
    printf("%lld %lld %lld %lld\n", times[0], times[runs / 2], times[(runs * 9) / 10], times[runs - 1]);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: exec-time RUNS WARMUP cmd [args...] [-- cmd [args...]]\n");
        return 2;
    }
    int runs = atoi(argv[1]), warmup = atoi(argv[2]);
    char **a = argv + 3, **b = NULL;
    for (int i = 3; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            argv[i] = NULL;
            b = argv + i + 1;
            break;
        }
    long long *ta = calloc((size_t)runs, sizeof *ta), *tb = calloc((size_t)runs, sizeof *tb);
    double *ratios = calloc((size_t)runs, sizeof *ratios);
    for (int i = 0; i < warmup; i++) {
        run_once(a);
        if (b) run_once(b);
    }
    for (int i = 0; i < runs; i++) {
        if (!b) {
            ta[i] = run_once(a);
        } else if (i % 2 == 0) {
            ta[i] = run_once(a);
            tb[i] = run_once(b);
        } else {
            tb[i] = run_once(b);
            ta[i] = run_once(a);
        }
        if (b) ratios[i] = (double)ta[i] / (double)tb[i];
    }
    print_stats(ta, runs);
    if (b) {
        print_stats(tb, runs);
        qsort(ratios, (size_t)runs, sizeof *ratios, cmpd);
        printf("%.3f\n", ratios[runs / 2]);
    }
    return 0;
}
