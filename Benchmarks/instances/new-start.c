/* The instances New + Start benchmark: a C sd-bus client of berthd's instances plugin on the bus given as argv[1].
 *
 *   new-start ADDRESS INSTANCES_DIR SERVER N
 *
 * N rounds of: New('{"application_name": "bench"}') (timed until its reply), a symlink INSTANCES_DIR/<id>/server ->
 * SERVER (the user's part, not timed), Start(id) (timed until the job's JobRemoved, which must say "done"), then
 * MainPID must be set. Prints one line per round, "sample <new_us> <start_reply_us> <new_plus_start_us>", nothing
 * else on stdout. This was InstancesLatencyTests' measurement; the functional part stays a test. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define DEST "org.berth.Berth1"
#define ROOT "/org/berth/Berth1/instances"
#define IFACE "org.berth.Berth1.Instances"
#define BENCH_PROGRAM "new-start"
#include "job-wait.h"

static void check(int r, sd_bus_error *error, const char *what) {
    if (r < 0) {
        fprintf(stderr, "new-start: %s: %s\n", what, error->message ? error->message : strerror(-r));
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: new-start ADDRESS INSTANCES_DIR SERVER N\n");
        return 2;
    }
    const char *dir = argv[2], *server = argv[3];
    int n = atoi(argv[4]);
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
    for (int i = 0; i < n; i++) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *id, *object;
        uint64_t t0 = now_usec();
        r = sd_bus_call_method(bus, DEST, ROOT, IFACE, "New", &error, &reply, "s", "{\"application_name\": \"bench\"}");
        check(r, &error, "New");
        uint64_t t1 = now_usec();
        if ((r = sd_bus_message_read(reply, "so", &id, &object)) < 0) die("read New", r);
        char *link = NULL, *instance_id = strdup(id), *instance_path = strdup(object);
        sd_bus_message_unref(reply);
        if (asprintf(&link, "%s/%s/server", dir, instance_id) < 0 || symlink(server, link) != 0) {
            fprintf(stderr, "new-start: symlink %s: %s\n", link ? link : "?", strerror(errno));
            return 1;
        }
        free(link);
        uint64_t t2 = now_usec();
        uint32_t job;
        const char *job_path;
        reply = NULL;
        r = sd_bus_call_method(bus, DEST, ROOT, IFACE, "Start", &error, &reply, "s", instance_id);
        check(r, &error, "Start");
        uint64_t t3 = now_usec();
        if ((r = sd_bus_message_read(reply, "uo", &job, &job_path)) < 0) die("read Start", r);
        sd_bus_message_unref(reply);
        wait_removed(bus, job);
        uint64_t t4 = now_usec();
        if (strcmp(last_result, "done") != 0) {
            fprintf(stderr, "new-start: Start %s ended %s\n", instance_id, last_result);
            return 1;
        }
        uint32_t pid = 0;
        r = sd_bus_get_property_trivial(bus, DEST, instance_path, "org.berth.Berth1.Instance", "MainPID", &error, 'u', &pid);
        check(r, &error, "MainPID");
        if (pid == 0) {
            fprintf(stderr, "new-start: %s has no MainPID after its Start job\n", instance_id);
            return 1;
        }
        printf("sample %llu %llu %llu\n", (unsigned long long)(t1 - t0), (unsigned long long)(t3 - t2),
            (unsigned long long)((t1 - t0) + (t4 - t2)));
        free(instance_id);
        free(instance_path);
    }
    sd_bus_flush(bus);
    sd_bus_unref(bus);
    return 0;
}
