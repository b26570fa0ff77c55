/* hostile-bench: the client side of the hostile-load benchmarks of issue 13 (Benchmarks/hostile/run.sh).
 *
 *   ping STOPFILE                  Manager.Ping in a loop (INTERVAL us apart) until STOPFILE exists; every call is
 *                                  timed alone (CLOCK_MONOTONIC around sd_bus_call). A call that gets no reply within
 *                                  TIMEOUT s counts as a hang. The percentiles are corrected for coordinated
 *                                  omission: a call that took T > INTERVAL also stands for the pings a client
 *                                  sending every INTERVAL would have sent meanwhile (T - INTERVAL, T - 2 INTERVAL, ...),
 *                                  so one stall of seconds weighs as what every client sees during it. p99_raw is
 *                                  the uncorrected p99 of the calls made. Output:
 *                                  ping n=.. min=.. p50=.. p90=.. p99=.. max=.. p99_raw=.. calls=.. hangs=.. errors=.. unit=us
 *   quiet SECONDS                  waits until a Ping answers within 50 ms (the previous load is over), at most
 *                                  SECONDS; prints quiet seconds=.. result=ok|busy.
 *   deploy BYTES NAME TARGET       Pickup.Deploy(NAME, BYTES random bytes, TARGET), the array appended in one piece.
 *   deployfd BYTES NAME TARGET     Pickup.DeployFd(fd, NAME, TARGET): the same bytes in a memfd, passed as a descriptor.
 *   logs PATH LINES                org.berth.Berth1.Service.Logs(LINES) on PATH.
 *   import PATH                    Manager.ImportConfig(PATH, replace=false, dry_run=true).
 *   adddir NAME PATH PATTERN       Pickup.AddDirectory(NAME, PATH, "files", {recursive: true, patterns: [PATTERN]}).
 *   soak CALLS CYCLES SERVICE      CALLS mixed read calls (Ping, Get(Version), GetAll, ListJobs, Services.List,
 *                                  Lookup, ListDeployments, Introspect, Service.Logs(10)) and CYCLES job cycles
 *                                  (Services.Stop(SERVICE) of a stopped service: a job that ends at once), interleaved.
 *   The one-call modes print: NAME seconds=.. result=ok|ERROR-NAME [lines=.. bytes=..]; a missing reply within
 *   TIMEOUT s prints result=hang. Exit status 0 when the call got any reply (an error reply included), 1 on a hang
 *   or a broken connection, 2 on bad usage.
 *
 * OPTIONS (before the mode): --address ADDR (required; no fallback to any other bus) --timeout S (30)
 *   --interval US (1000, ping only)
 *
 * Build: cc -O2 -o hostile-bench hostile-bench.c $(pkg-config --cflags --libs libsystemd) -lm
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define DEST "org.berth.Berth1"
#define ROOT "/org/berth/Berth1"
#define MANAGER "org.berth.Berth1.Manager"

static const char *opt_address;
static double opt_timeout = 30.0;
static unsigned long opt_interval = 1000;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *v, size_t n, double q) {
    if (n == 0) return 0;
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

static sd_bus *connect_bus(void) {
    sd_bus *bus = NULL;
    int r = sd_bus_new(&bus);
    if (r >= 0) r = sd_bus_set_address(bus, opt_address);
    if (r >= 0) r = sd_bus_set_bus_client(bus, 1);
    if (r >= 0) r = sd_bus_start(bus);
    if (r < 0) {
        fprintf(stderr, "hostile-bench: cannot connect to %s: %s\n", opt_address, strerror(-r));
        exit(1);
    }
    return bus;
}

/* Sends m and waits; prints "LABEL seconds=.. result=.." unless quiet; returns 0 (reply), 1 (hang/broken). */
static int timed_call(sd_bus *bus, sd_bus_message *m, const char *label, sd_bus_message **reply_out, bool quiet) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    uint64_t t0 = now_ns();
    int r = sd_bus_call(bus, m, (uint64_t)(opt_timeout * 1e6), &error, &reply);
    double seconds = (double)(now_ns() - t0) / 1e9;
    int status = 0;
    const char *result = "ok";
    if (r < 0) {
        if (sd_bus_error_has_name(&error, SD_BUS_ERROR_NO_REPLY) || sd_bus_error_has_name(&error, SD_BUS_ERROR_TIMEOUT) ||
            r == -ETIMEDOUT) {
            result = "hang";
            status = 1;
        } else if (error.name) {
            result = error.name;
        } else {
            result = strerror(-r);
            status = 1;
        }
    }
    if (!quiet) {
        printf("%s seconds=%.3f result=%s", label, seconds, result);
        if (r < 0 && error.message) fprintf(stderr, "hostile-bench: %s: %.300s\n", label, error.message);
    }
    sd_bus_error_free(&error);
    if (reply_out)
        *reply_out = reply;
    else
        sd_bus_message_unref(reply);
    return status;
}

static sd_bus_message *method(sd_bus *bus, const char *path, const char *iface, const char *member) {
    sd_bus_message *m = NULL;
    int r = sd_bus_message_new_method_call(bus, &m, DEST, path, iface, member);
    if (r < 0) {
        fprintf(stderr, "hostile-bench: cannot build %s: %s\n", member, strerror(-r));
        exit(1);
    }
    return m;
}

static int check(int r, const char *what) {
    if (r < 0) {
        fprintf(stderr, "hostile-bench: %s: %s\n", what, strerror(-r));
        exit(1);
    }
    return r;
}

static int mode_ping(const char *stopfile) {
    sd_bus *bus = connect_bus();
    size_t cap = 1 << 16, n = 0, rawcap = 1 << 16, nraw = 0;
    uint64_t *v = malloc(cap * sizeof *v), *raw = malloc(rawcap * sizeof *raw);
    unsigned long hangs = 0, errors = 0;
    while (access(stopfile, F_OK) != 0) {
        sd_bus_message *m = method(bus, ROOT, MANAGER, "Ping");
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t t0 = now_ns();
        int r = sd_bus_call(bus, m, (uint64_t)(opt_timeout * 1e6), &error, NULL);
        uint64_t dt = now_ns() - t0;
        sd_bus_message_unref(m);
        if (r < 0) {
            if (sd_bus_error_has_name(&error, SD_BUS_ERROR_NO_REPLY) || r == -ETIMEDOUT)
                hangs++;
            else
                errors++;
            sd_bus_error_free(&error);
            if (!error.name && r != -ETIMEDOUT) {
                fprintf(stderr, "hostile-bench: ping: %s\n", strerror(-r));
                break;
            }
        }
        if (nraw == rawcap) raw = realloc(raw, (rawcap *= 2) * sizeof *raw);
        raw[nraw++] = dt;
        uint64_t step = (uint64_t)(opt_interval ? opt_interval : 1000) * 1000ull;
        for (uint64_t t = dt;; t -= step) {  /* dt, then dt - step, dt - 2 step, ... while >= step */
            if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = t;
            if (t < 2 * step) break;
        }
        if (opt_interval) usleep((useconds_t)opt_interval);
    }
    qsort(v, n, sizeof *v, cmp_u64);
    qsort(raw, nraw, sizeof *raw, cmp_u64);
    printf("ping n=%zu min=%.1f p50=%.1f p90=%.1f p99=%.1f max=%.1f p99_raw=%.1f calls=%zu hangs=%lu errors=%lu unit=us\n",
           n, n ? (double)v[0] / 1e3 : 0.0, (double)percentile(v, n, 0.5) / 1e3, (double)percentile(v, n, 0.9) / 1e3,
           (double)percentile(v, n, 0.99) / 1e3, n ? (double)v[n - 1] / 1e3 : 0.0,
           (double)percentile(raw, nraw, 0.99) / 1e3, nraw, hangs, errors);
    free(v);
    free(raw);
    sd_bus_flush_close_unref(bus);
    return hangs ? 1 : 0;
}

static int mode_quiet(double seconds) {
    sd_bus *bus = connect_bus();
    uint64_t t0 = now_ns();
    const char *result = "busy";
    while ((double)(now_ns() - t0) / 1e9 < seconds) {
        sd_bus_message *m = method(bus, ROOT, MANAGER, "Ping");
        uint64_t t = now_ns();
        int r = sd_bus_call(bus, m, 60 * 1000000ull, NULL, NULL);
        sd_bus_message_unref(m);
        if (r >= 0 && now_ns() - t < 50 * 1000000ull) {
            result = "ok";
            break;
        }
        usleep(100000);
    }
    printf("quiet seconds=%.1f result=%s\n", (double)(now_ns() - t0) / 1e9, result);
    sd_bus_flush_close_unref(bus);
    return strcmp(result, "ok") != 0;
}

static int mode_deployfd(size_t bytes, const char *name, const char *target) {
    sd_bus *bus = connect_bus();
    int fd = memfd_create("hostile-bench", MFD_CLOEXEC);
    check(fd < 0 ? -errno : 0, "memfd_create");
    uint8_t *data = malloc(1 << 20);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < (1 << 20) ? bytes - done : (1 << 20);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            data[i] = (uint8_t)x;
        }
        check(write(fd, data, n) == (ssize_t)n ? 0 : -EIO, "write the memfd");
        done += n;
    }
    free(data);
    lseek(fd, 0, SEEK_SET);
    sd_bus_message *m = method(bus, ROOT "/pickup", "org.berth.Berth1.Pickup", "DeployFd");
    check(sd_bus_message_append(m, "hss", fd, name, target), "append fd, name, target");
    close(fd);
    int status = timed_call(bus, m, "deployfd", NULL, false);
    printf(" bytes=%zu\n", bytes);
    sd_bus_message_unref(m);
    sd_bus_flush_close_unref(bus);
    return status;
}

static int mode_deploy(size_t bytes, const char *name, const char *target) {
    sd_bus *bus = connect_bus();
    uint8_t *data = malloc(bytes ? bytes : 1);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < bytes; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    sd_bus_message *m = method(bus, ROOT "/pickup", "org.berth.Berth1.Pickup", "Deploy");
    check(sd_bus_message_append(m, "s", name), "append name");
    check(sd_bus_message_append_array(m, 'y', data, bytes), "append data");
    check(sd_bus_message_append(m, "s", target), "append target");
    free(data);
    int status = timed_call(bus, m, "deploy", NULL, false);
    printf(" bytes=%zu\n", bytes);
    sd_bus_message_unref(m);
    sd_bus_flush_close_unref(bus);
    return status;
}

static int mode_logs(const char *path, uint32_t lines) {
    sd_bus *bus = connect_bus();
    sd_bus_message *m = method(bus, path, "org.berth.Berth1.Service", "Logs"), *reply = NULL;
    check(sd_bus_message_append(m, "u", lines), "append lines");
    int status = timed_call(bus, m, "logs", &reply, false);
    size_t count = 0, total = 0;
    if (reply && sd_bus_message_enter_container(reply, 'a', "s") > 0) {
        const char *s;
        while (sd_bus_message_read(reply, "s", &s) > 0) count++, total += strlen(s);
    }
    printf(" lines=%zu bytes=%zu\n", count, total);
    sd_bus_message_unref(reply);
    sd_bus_message_unref(m);
    sd_bus_flush_close_unref(bus);
    return status;
}

static int mode_import(const char *path) {
    sd_bus *bus = connect_bus();
    sd_bus_message *m = method(bus, ROOT, MANAGER, "ImportConfig");
    check(sd_bus_message_append(m, "sbb", path, 0, 1), "append");
    int status = timed_call(bus, m, "import", NULL, false);
    printf("\n");
    sd_bus_message_unref(m);
    sd_bus_flush_close_unref(bus);
    return status;
}

static int mode_adddir(const char *name, const char *path, const char *pattern) {
    sd_bus *bus = connect_bus();
    sd_bus_message *m = method(bus, ROOT "/pickup", "org.berth.Berth1.Pickup", "AddDirectory");
    check(sd_bus_message_append(m, "sss", name, path, "files"), "append");
    check(sd_bus_message_append(m, "a{sv}", 2, "recursive", "b", 1, "patterns", "as", 1, pattern), "append options");
    int status = timed_call(bus, m, "adddir", NULL, false);
    printf("\n");
    sd_bus_message_unref(m);
    sd_bus_flush_close_unref(bus);
    return status;
}

static int mode_soak(unsigned long calls, unsigned long cycles, const char *service) {
    sd_bus *bus = connect_bus();
    char service_path[512];
    /* BusPath.encode: a plain name of letters and digits is its own path element. */
    snprintf(service_path, sizeof service_path, ROOT "/services/%s", service);
    unsigned long errors = 0, hangs = 0, jobs = 0, done = 0;
    uint64_t t0 = now_ns();
    unsigned long every = cycles ? (calls + cycles) / cycles : 0;
    for (unsigned long i = 0; done < calls || jobs < cycles; i++) {
        sd_bus_message *m;
        bool job = every && (i % every == every - 1) && jobs < cycles;
        if (!job && done >= calls) job = true;
        if (job) {
            m = method(bus, ROOT "/services", "org.berth.Berth1.Services", "Stop");
            check(sd_bus_message_append(m, "s", service), "append");
            jobs++;
        } else {
            switch (done % 9) {
            case 0: m = method(bus, ROOT, MANAGER, "Ping"); break;
            case 1:
                m = method(bus, ROOT, "org.freedesktop.DBus.Properties", "Get");
                check(sd_bus_message_append(m, "ss", MANAGER, "Version"), "append");
                break;
            case 2:
                m = method(bus, ROOT, "org.freedesktop.DBus.Properties", "GetAll");
                check(sd_bus_message_append(m, "s", MANAGER), "append");
                break;
            case 3: m = method(bus, ROOT, MANAGER, "ListJobs"); break;
            case 4: m = method(bus, ROOT "/services", "org.berth.Berth1.Services", "List"); break;
            case 5:
                m = method(bus, ROOT "/services", "org.berth.Berth1.Services", "Lookup");
                check(sd_bus_message_append(m, "s", service), "append");
                break;
            case 6:
                m = method(bus, ROOT "/pickup", "org.berth.Berth1.Pickup", "ListDeployments");
                check(sd_bus_message_append(m, "u", 10), "append");
                break;
            case 7: m = method(bus, ROOT "/services", "org.freedesktop.DBus.Introspectable", "Introspect"); break;
            default:
                m = method(bus, service_path, "org.berth.Berth1.Service", "Logs");
                check(sd_bus_message_append(m, "u", 10), "append");
                break;
            }
            done++;
        }
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_call(bus, m, (uint64_t)(opt_timeout * 1e6), &error, NULL);
        sd_bus_message_unref(m);
        if (r < 0) {
            if (sd_bus_error_has_name(&error, SD_BUS_ERROR_NO_REPLY) || r == -ETIMEDOUT) {
                hangs++;
            } else if (!error.name) {
                fprintf(stderr, "hostile-bench: soak: %s\n", strerror(-r));
                sd_bus_error_free(&error);
                hangs++;
                break;
            } else {
                if (errors < 5) fprintf(stderr, "hostile-bench: soak: %s: %s\n", error.name, error.message);
                errors++;
            }
            sd_bus_error_free(&error);
        }
    }
    printf("soak calls=%lu jobs=%lu errors=%lu hangs=%lu seconds=%.1f\n", done, jobs, errors, hangs,
           (double)(now_ns() - t0) / 1e9);
    sd_bus_flush_close_unref(bus);
    return hangs ? 1 : 0;
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"address", required_argument, NULL, 'a'},
        {"timeout", required_argument, NULL, 't'},
        {"interval", required_argument, NULL, 'i'},
        {0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "+", options, NULL)) != -1) {
        switch (c) {
        case 'a': opt_address = optarg; break;
        case 't': opt_timeout = atof(optarg); break;
        case 'i': opt_interval = strtoul(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (!opt_address || optind >= argc) {
        fprintf(stderr, "usage: hostile-bench --address ADDR [--timeout S] [--interval US] MODE ARGS...\n");
        return 2;
    }
    const char *mode = argv[optind];
    char **a = argv + optind + 1;
    int n = argc - optind - 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "ping") && n == 1) return mode_ping(a[0]);
    if (!strcmp(mode, "quiet") && n == 1) return mode_quiet(atof(a[0]));
    if (!strcmp(mode, "deploy") && n == 3) return mode_deploy(strtoull(a[0], NULL, 10), a[1], a[2]);
    if (!strcmp(mode, "deployfd") && n == 3) return mode_deployfd(strtoull(a[0], NULL, 10), a[1], a[2]);
    if (!strcmp(mode, "logs") && n == 2) return mode_logs(a[0], (uint32_t)strtoul(a[1], NULL, 10));
    if (!strcmp(mode, "import") && n == 1) return mode_import(a[0]);
    if (!strcmp(mode, "adddir") && n == 3) return mode_adddir(a[0], a[1], a[2]);
    if (!strcmp(mode, "soak") && n == 3) return mode_soak(strtoul(a[0], NULL, 10), strtoul(a[1], NULL, 10), a[2]);
    fprintf(stderr, "hostile-bench: unknown mode or wrong argument count: %s\n", mode);
    return 2;
}
