/* The berthd side of the services benchmark: a C sd-bus client on the bus given as argv[1].
 *
 *   services-bench ADDRESS starts N         Start "one" N times (Stop between), start -> JobRemoved latency
 *   services-bench ADDRESS crash N          kill -9 the MainPID of "crash" N times, time until a new MainPID is active
 *   services-bench ADDRESS many N           Start s000..s(N-1) at once, time until all N jobs are removed
 *
 * Prints one line per sample in microseconds ("sample <us>"), nothing else on stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#define DEST "org.berth.Berth1"
#define ROOT "/org/berth/Berth1/services"
#define IFACE "org.berth.Berth1.Services"
#define BENCH_PROGRAM "services-bench"
#include "job-wait.h"

static uint32_t call_job(sd_bus *bus, const char *member, const char *name) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    uint32_t id;
    const char *path;
    int r = sd_bus_call_method(bus, DEST, ROOT, IFACE, member, &error, &reply, "s", name);
    if (r < 0) {
        fprintf(stderr, "services-bench: %s %s: %s\n", member, name, error.message ? error.message : strerror(-r));
        exit(1);
    }
    if ((r = sd_bus_message_read(reply, "uo", &id, &path)) < 0) die("read job", r);
    sd_bus_message_unref(reply);
    return id;
}

static void service_path(const char *name, char **out) {
    int r = sd_bus_path_encode(ROOT, name, out);
    if (r < 0) die("path", r);
}

static uint32_t main_pid(sd_bus *bus, const char *path) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    uint32_t pid = 0;
    int r = sd_bus_get_property_trivial(bus, DEST, path, "org.berth.Berth1.Service", "MainPID", &error, 'u', &pid);
    if (r < 0) die("get MainPID", r);
    return pid;
}

static int is_active(sd_bus *bus, const char *path) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    char *state = NULL;
    int r = sd_bus_get_property_string(bus, DEST, path, "org.berth.Berth1.Service", "State", &error, &state);
    if (r < 0) die("get State", r);
    int active = strcmp(state, "active") == 0;
    free(state);
    return active;
}

static int on_started(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    uint32_t id;
    const char *path;
    (void)error;
    if (sd_bus_message_is_method_error(m, NULL)) {
        fprintf(stderr, "services-bench: Start: %s\n", sd_bus_message_get_error(m)->message);
        exit(1);
    }
    sd_bus_message_read(m, "uo", &id, &path);
    ((uint32_t *)userdata)[0] = id;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: services-bench ADDRESS starts|crash|many N\n");
        return 2;
    }
    int n = atoi(argv[3]);
    sd_bus *bus = NULL;
    int r;
    jobs_init();
    if ((r = sd_bus_new(&bus)) < 0) die("new", r);
    if ((r = sd_bus_set_address(bus, argv[1])) < 0) die("address", r);
    sd_bus_set_bus_client(bus, 1);
    if ((r = sd_bus_start(bus)) < 0) die("start", r);
    if ((r = sd_bus_match_signal(bus, NULL, DEST, "/org/berth/Berth1", "org.berth.Berth1.Manager", "JobRemoved",
             on_removed, NULL)) < 0)
        die("match", r);

    if (strcmp(argv[2], "starts") == 0) {
        for (int i = 0; i < n; i++) {
            uint64_t t0 = now_usec();
            uint32_t id = call_job(bus, "Start", "one");
            wait_removed(bus, id);
            uint64_t t1 = now_usec();
            if (strcmp(last_result, "done") != 0) { fprintf(stderr, "start %s\n", last_result); return 1; }
            printf("sample %llu\n", (unsigned long long)(t1 - t0));
            wait_removed(bus, call_job(bus, "Stop", "one"));
        }
    } else if (strcmp(argv[2], "crash") == 0) {
        char *path;
        service_path("crash", &path);
        wait_removed(bus, call_job(bus, "Start", "crash"));
        for (int i = 0; i < n; i++) {
            uint32_t old = main_pid(bus, path);
            uint64_t t0 = now_usec();
            kill((pid_t)old, SIGKILL);
            for (;;) {
                uint32_t pid = main_pid(bus, path);
                if (pid != 0 && pid != old && is_active(bus, path)) break;
            }
            printf("sample %llu\n", (unsigned long long)(now_usec() - t0));
        }
        free(path);
    } else if (strcmp(argv[2], "many") == 0) {
        uint32_t *ids = calloc((size_t)n, sizeof *ids);
        uint64_t t0 = now_usec();
        for (int i = 0; i < n; i++) {
            char name[16];
            snprintf(name, sizeof name, "s%03d", i);
            if ((r = sd_bus_call_method_async(bus, NULL, DEST, ROOT, IFACE, "Start", on_started, &ids[i], "s", name)) < 0)
                die("call", r);
        }
        for (int i = 0; i < n; i++) {
            while (ids[i] == 0) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) die("process", r);
                if (r == 0) sd_bus_wait(bus, UINT64_MAX);
            }
            wait_removed(bus, ids[i]);
        }
        printf("sample %llu\n", (unsigned long long)(now_usec() - t0));
        free(ids);
    }
    sd_bus_flush(bus);
    sd_bus_unref(bus);
    return 0;
}
