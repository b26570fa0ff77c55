/* The figures of issue 19: a chain of services ordered by `after:`, and a code drop into a running service.
 *
 *   order-bench ADDRESS one N              Start "solo" N times (Stop between): start -> JobRemoved, the baseline
 *   order-bench ADDRESS chain N LEN        N rounds: Start c00..c(LEN-1) at once (each after: the previous), time
 *                                          until every job is removed (all ready, in order); Stop all between
 *   order-bench ADDRESS restart N NAME     Restart NAME N times: the service's own restart -> ready time
 *   order-bench ADDRESS drop N NAME DIR    N code drops: write DIR/.version.tmp, rename it to DIR/version, time
 *                                          until pickup's Deployed (or DeployFailed) for "version" (the
 *                                          deployment ends when NAME is ready on the new release); with DIR
 *                                          pickup's files/ folder, pickup's own part alone
 *
 * Prints one line per sample in microseconds ("sample <us>"), nothing else on stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#define DEST "org.berth.Berth1"
#define ROOT "/org/berth/Berth1/services"
#define IFACE "org.berth.Berth1.Services"
#define BENCH_PROGRAM "order-bench"
#include "job-wait.h"

static uint32_t call_job(sd_bus *bus, const char *member, const char *name) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    uint32_t id;
    const char *path;
    int r = sd_bus_call_method(bus, DEST, ROOT, IFACE, member, &error, &reply, "s", name);
    if (r < 0) {
        fprintf(stderr, "order-bench: %s %s: %s\n", member, name, error.message ? error.message : strerror(-r));
        exit(1);
    }
    if ((r = sd_bus_message_read(reply, "uo", &id, &path)) < 0) die("read job", r);
    sd_bus_message_unref(reply);
    return id;
}

static void check_done(const char *what) {
    if (strcmp(last_result, "done") != 0) {
        fprintf(stderr, "order-bench: %s ended %s\n", what, last_result);
        exit(1);
    }
}

static int deployed;
static char deploy_error[512];

static int on_deploy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    const char *id, *name, *target, *detail;
    (void)userdata;
    (void)error;
    if (sd_bus_message_read(m, "ssss", &id, &name, &target, &detail) < 0) return 0;
    if (strcmp(name, "version") != 0) return 0;
    if (strcmp(sd_bus_message_get_member(m), "DeployFailed") == 0) snprintf(deploy_error, sizeof deploy_error, "%s", detail);
    deployed = 1;
    return 0;
}

static void pump(sd_bus *bus, int *flag) {
    while (!*flag) {
        int r = sd_bus_process(bus, NULL);
        if (r < 0) die("process", r);
        if (r == 0 && (r = sd_bus_wait(bus, UINT64_MAX)) < 0) die("wait", r);
    }
}

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) != 0) {
        fprintf(stderr, "order-bench: write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: order-bench ADDRESS one|chain|restart|drop N ...\n");
        return 2;
    }
    sd_bus *bus = NULL;
    int r = sd_bus_new(&bus);
    if (r < 0) die("bus", r);
    sd_bus_set_address(bus, argv[1]);
    sd_bus_set_bus_client(bus, 1);
    if ((r = sd_bus_start(bus)) < 0) die("connect", r);
    jobs_init();
    r = sd_bus_match_signal(bus, NULL, DEST, "/org/berth/Berth1", "org.berth.Berth1.Manager", "JobRemoved", on_removed, NULL);
    if (r < 0) die("match", r);
    const char *mode = argv[2];
    int n = atoi(argv[3]);
    if (strcmp(mode, "one") == 0) {
        for (int i = 0; i < n; i++) {
            uint64_t t0 = now_usec();
            uint32_t id = call_job(bus, "Start", "solo");
            wait_removed(bus, id);
            uint64_t t1 = now_usec();
            check_done("start solo");
            printf("sample %llu\n", (unsigned long long)(t1 - t0));
            wait_removed(bus, call_job(bus, "Stop", "solo"));
        }
    } else if (strcmp(mode, "chain") == 0 && argc >= 5) {
        int len = atoi(argv[4]);
        char name[16];
        uint32_t ids[64];
        for (int i = 0; i < n; i++) {
            uint64_t t0 = now_usec();
            for (int k = 0; k < len; k++) {
                snprintf(name, sizeof name, "c%02d", k);
                ids[k] = call_job(bus, "Start", name);
            }
            for (int k = 0; k < len; k++) {
                wait_removed(bus, ids[k]);
                check_done("start of the chain");
            }
            uint64_t t1 = now_usec();
            printf("sample %llu\n", (unsigned long long)(t1 - t0));
            for (int k = len - 1; k >= 0; k--) {
                snprintf(name, sizeof name, "c%02d", k);
                wait_removed(bus, call_job(bus, "Stop", name));
            }
        }
    } else if (strcmp(mode, "restart") == 0 && argc >= 5) {
        for (int i = 0; i < n; i++) {
            uint64_t t0 = now_usec();
            wait_removed(bus, call_job(bus, "Restart", argv[4]));
            uint64_t t1 = now_usec();
            check_done("restart");
            printf("sample %llu\n", (unsigned long long)(t1 - t0));
        }
    } else if (strcmp(mode, "drop") == 0 && argc >= 6) {
        r = sd_bus_match_signal(bus, NULL, DEST, "/org/berth/Berth1/pickup", "org.berth.Berth1.Pickup", NULL, on_deploy, NULL);
        if (r < 0) die("match pickup", r);
        char temp[4096], final[4096], text[64];
        snprintf(temp, sizeof temp, "%s/.version.tmp", argv[5]);
        snprintf(final, sizeof final, "%s/version", argv[5]);
        for (int i = 0; i < n; i++) {
            snprintf(text, sizeof text, "v%d\n", i);
            write_file(temp, text);
            deployed = 0;
            uint64_t t0 = now_usec();
            if (rename(temp, final) != 0) die("rename", -errno);
            pump(bus, &deployed);
            uint64_t t1 = now_usec();
            if (deploy_error[0]) {
                fprintf(stderr, "order-bench: deployment failed: %s\n", deploy_error);
                return 1;
            }
            printf("sample %llu\n", (unsigned long long)(t1 - t0));
        }
    } else {
        fprintf(stderr, "order-bench: bad arguments\n");
        return 2;
    }
    sd_bus_unref(bus);
    return 0;
}
