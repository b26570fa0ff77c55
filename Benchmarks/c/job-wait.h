// Shared by the benchmark clients that start berthd jobs and wait for them (services-bench.c, new-start.c):
// a monotonic clock, a fatal-error exit naming the program, and JobRemoved tracking by job id. Define
// BENCH_PROGRAM (the program's name for error lines) before including it; install on_removed as the handler of a
// JobRemoved match and call jobs_init() first.
#ifndef BERTH_BENCH_JOB_WAIT_H
#define BERTH_BENCH_JOB_WAIT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#define MAX_JOBS (1u << 22)

static unsigned char *removed;
static char last_result[64];

static void jobs_init(void) { removed = calloc(MAX_JOBS, 1); }

static uint64_t now_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *what, int r) {
    fprintf(stderr, BENCH_PROGRAM ": %s: %s\n", what, strerror(-r));
    exit(1);
}

static int on_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    uint32_t id;
    const char *path, *plugin, *result;
    (void)userdata;
    (void)error;
    if (sd_bus_message_read(m, "uoss", &id, &path, &plugin, &result) < 0) return 0;
    if (id < MAX_JOBS) removed[id] = 1;
    snprintf(last_result, sizeof last_result, "%s", result);
    return 0;
}

static void wait_removed(sd_bus *bus, uint32_t id) {
    while (!removed[id]) {
        int r = sd_bus_process(bus, NULL);
        if (r < 0) die("process", r);
        if (r == 0 && (r = sd_bus_wait(bus, UINT64_MAX)) < 0) die("wait", r);
    }
}

#endif
