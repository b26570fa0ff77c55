/* pickup benchmarks client: file closed in a pickup folder -> Deployed signal received, and bursts.
 *
 *   pickup-latency --address ADDR latency FOLDER COUNT      write COUNT files one after another; for each, the time
 *                                                           from close() to the Deployed signal naming it
 *   pickup-latency --address ADDR burst COUNT PREFIX -- CMD ARGS...
 *                                                           subscribe, run CMD (e.g. git checkout), count Deployed
 *                                                           signals for names starting with PREFIX until COUNT
 *                                                           distinct ones arrived, then listen 1 s more for repeats;
 *                                                           reports the command's own run time (the baseline) and
 *                                                           the time from its end to the last deployment
 * The match is added synchronously before anything is written, so no signal can be missed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static char last_name[512];
static int last_ok;
static int got;

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    (void)userdata; (void)error;
    const char *id, *name, *target, *detail;
    if (sd_bus_message_read(m, "ssss", &id, &name, &target, &detail) < 0) return 0;
    snprintf(last_name, sizeof last_name, "%s", name);
    last_ok = strcmp(sd_bus_message_get_member(m), "Deployed") == 0;
    if (!last_ok) fprintf(stderr, "DeployFailed %s: %s\n", name, detail);
    got = 1;
    return 0;
}

static int wait_signal(sd_bus *bus, uint64_t deadline) {
    got = 0;
    while (!got) {
        int r = sd_bus_process(bus, NULL);
        if (r < 0) return r;
        if (got) break;
        if (r > 0) continue;
        uint64_t t = now_us();
        if (t >= deadline) return -ETIMEDOUT;
        r = sd_bus_wait(bus, deadline - t);
        if (r < 0 && r != -EINTR) return r;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int latency(sd_bus *bus, const char *folder, int count) {
    uint64_t *d = calloc((size_t)count, sizeof *d);
    for (int i = 0; i < count; i++) {
        char path[4096], name[64];
        snprintf(name, sizeof name, "lat-%06d.txt", i);
        snprintf(path, sizeof path, "%s/%s", folder, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) { perror(path); return 1; }
        char body[64];
        int n = snprintf(body, sizeof body, "file %d %llu\n", i, (unsigned long long)now_us());
        if (write(fd, body, (size_t)n) != n) { perror("write"); return 1; }
        uint64_t t0 = now_us();
        close(fd);
        for (;;) {
            int r = wait_signal(bus, t0 + 10000000u);
            if (r < 0) { fprintf(stderr, "no signal for %s: %s\n", name, strerror(-r)); return 1; }
            if (strcmp(last_name, name) == 0) break;
        }
        if (!last_ok) return 1;
        d[i] = now_us() - t0;
    }
    qsort(d, (size_t)count, sizeof *d, cmp_u64);
    double mean = 0;
    for (int i = 0; i < count; i++) mean += (double)d[i] / count;
    printf("close->Deployed n=%d min=%llu p50=%llu p90=%llu p99=%llu max=%llu mean=%.0f unit=us\n", count,
        (unsigned long long)d[0], (unsigned long long)d[(count - 1) * 50 / 100], (unsigned long long)d[(count - 1) * 90 / 100],
        (unsigned long long)d[(count - 1) * 99 / 100], (unsigned long long)d[count - 1], mean);
    free(d);
    return 0;
}

/* The command's own run time (the baseline of the burst: writing the files), from a thread that waits for it. */
struct waiter { pid_t pid; int status; uint64_t exited; };
static void *wait_command(void *arg) {
    struct waiter *w = arg;
    waitpid(w->pid, &w->status, 0);
    w->exited = now_us();
    return NULL;
}

static int burst(sd_bus *bus, int count, const char *prefix, char **argv) {
    char **seen = calloc((size_t)count * 2 + 16, sizeof *seen);
    int distinct = 0, repeats = 0, failed = 0, late = 0;
    uint64_t t0 = now_us(), t_last = 0;
    pid_t pid = fork();
    if (pid == 0) { execvp(argv[0], argv); _exit(127); }
    struct waiter w = { .pid = pid };
    pthread_t thread;
    pthread_create(&thread, NULL, wait_command, &w);
    uint64_t deadline = t0 + 30000000u;
    while (distinct < count) {
        int r = wait_signal(bus, deadline);
        if (r < 0) { fprintf(stderr, "burst: stopped waiting after %d: %s\n", distinct, strerror(-r)); break; }
        if (strncmp(last_name, prefix, strlen(prefix)) != 0) continue;
        if (!last_ok) failed++;
        int dup = 0;
        for (int i = 0; i < distinct; i++) if (strcmp(seen[i], last_name) == 0) { dup = 1; break; }
        if (dup) repeats++; else seen[distinct++] = strdup(last_name);
        t_last = now_us();
    }
    pthread_join(thread, NULL);
    int status = w.status;
    uint64_t quiet = now_us() + 1000000u; /* one more second: any repeat would show up */
    while (wait_signal(bus, quiet) == 0) {
        if (strncmp(last_name, prefix, strlen(prefix)) != 0) continue;
        int dup = 0;
        for (int i = 0; i < distinct; i++) if (strcmp(seen[i], last_name) == 0) { dup = 1; break; }
        if (dup) repeats++; else { seen[distinct++] = strdup(last_name); late++; }
    }
    printf("burst n=%d deployed=%d late=%d repeats=%d failed=%d command_exit=%d command_time=%llu start_to_last=%llu "
        "command_end_to_last=%lld unit=us\n", count, distinct, late, repeats, failed,
        WIFEXITED(status) ? WEXITSTATUS(status) : -1, (unsigned long long)(w.exited - t0),
        (unsigned long long)(t_last - t0), (long long)t_last - (long long)w.exited);
    return distinct == count && late == 0 && repeats == 0 && failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *address = getenv("DBUS_SESSION_BUS_ADDRESS");
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "--address") == 0) { address = argv[a + 1]; a += 2; }
    if (!address || a >= argc) { fprintf(stderr, "usage: see the comment at the top of pickup-latency.c\n"); return 2; }
    sd_bus *bus = NULL;
    int r = sd_bus_new(&bus);
    if (r >= 0) r = sd_bus_set_address(bus, address);
    if (r >= 0) r = sd_bus_set_bus_client(bus, 1);
    if (r >= 0) r = sd_bus_start(bus);
    if (r < 0) { fprintf(stderr, "cannot connect to %s: %s\n", address, strerror(-r)); return 1; }
    r = sd_bus_match_signal(bus, NULL, NULL, "/org/berth/Berth1/pickup", "org.berth.Berth1.Pickup", NULL, on_signal, NULL);
    if (r < 0) { fprintf(stderr, "match: %s\n", strerror(-r)); return 1; }
    if (strcmp(argv[a], "latency") == 0 && a + 2 < argc) return latency(bus, argv[a + 1], atoi(argv[a + 2]));
    if (strcmp(argv[a], "burst") == 0 && a + 4 < argc && strcmp(argv[a + 3], "--") == 0)
        return burst(bus, atoi(argv[a + 1]), argv[a + 2], argv + a + 4);
    fprintf(stderr, "usage: see the comment at the top of pickup-latency.c\n");
    return 2;
}
