/* bus-latency: a C sd-bus client that times D-Bus operations for the berth benchmarks.
 *
 * Modes (OPTIONS come before the mode):
 *   call DEST PATH IFACE MEMBER        a method call with no arguments; WARMUP calls, then COUNT sequential calls,
 *                                      each timed with CLOCK_MONOTONIC around sd_bus_call() alone (the message is
 *                                      built before the clock starts).
 *   get DEST PATH IFACE PROPERTY       the same for org.freedesktop.DBus.Properties.Get(IFACE, PROPERTY).
 *   rows SPEC...                       several call/get targets measured by one client in one process: each gets
 *                                      WARMUP calls, then its COUNT calls are split into ROUNDS blocks taken in turn
 *                                      with the other targets, so a drift of the machine touches all of them alike.
 *                                      SPEC: LABEL=call,DEST,PATH,IFACE,MEMBER or LABEL=get,DEST,PATH,IFACE,PROPERTY.
 *   exec-name NAME PROGRAM [ARG...]    subscribe to NameOwnerChanged for NAME, then fork+exec PROGRAM and time until
 *                                      NAME is owned; SIGTERM the program and wait for it and for the name to go;
 *                                      repeat RUNS times (default 20) and report the median.
 *   wait-name NAME                     wait until NAME is owned (at most TIMEOUT s); exit 1 if it never is.
 *   signals SENDER PATH IFACE MEMBER [TRIGGER-MEMBER COUNT]
 *                                      count matching signals per second (SENDER, PATH, IFACE may be "-" for any).
 *                                      With a trigger, call TRIGGER-MEMBER(u COUNT) on SENDER/PATH/IFACE after the
 *                                      match is installed and stop at COUNT signals; otherwise count for DURATION s.
 *
 * Output: one machine-readable line on stdout (one per SPEC for rows), for example
 *   call:Ping n=10000 warmup=1000 rounds=1 min=21.3 p50=24.0 p90=26.1 p99=40.2 max=311.0 mean=24.9 unit=us
 *   exec-name:org.berth.Berth1 runs=20 min=... median=... p90=... max=... stop_median=... unit=us
 *   signals:Tick signals=100000 seconds=0.52 rate=192000.0 unit=signals/s
 * Percentiles are nearest-rank; the exec median is the usual median (mean of the two middle runs when even).
 * Diagnostics go to stderr. Exit status 0 on success, 1 on a failed measurement, 2 on bad usage.
 *
 * Build: cc -O2 -o bus-latency bus-latency.c $(pkg-config --cflags --libs libsystemd) -lm
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define NSEC_PER_USEC 1000ull
#define NSEC_PER_MSEC 1000000ull
#define NSEC_PER_SEC 1000000000ull

static const char *opt_address;
static const char *opt_label;
static const char *opt_log = "/dev/null";
static unsigned long opt_warmup = 1000;
static unsigned long opt_count = 10000;
static unsigned long opt_runs = 20;
static unsigned long opt_rounds = 1;
static double opt_timeout = 10.0;
static double opt_duration = 5.0;
static pid_t opt_pid;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint64_t *v, size_t n, double q) {
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static double median_us(uint64_t *v, size_t n) {
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_u64);
    if (n % 2)
        return (double)v[n / 2] / NSEC_PER_USEC;
    return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0 / NSEC_PER_USEC;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bus-latency [OPTIONS] MODE ARGS...\n"
            "modes:\n"
            "  call DEST PATH IFACE MEMBER          time COUNT sequential method calls (no arguments)\n"
            "  get DEST PATH IFACE PROPERTY         time COUNT sequential Properties.Get calls\n"
            "  rows SPEC...                         several call/get targets in one process, interleaved in ROUNDS\n"
            "                                       blocks; SPEC is LABEL=call,DEST,PATH,IFACE,MEMBER or\n"
            "                                       LABEL=get,DEST,PATH,IFACE,PROPERTY; one output line per SPEC\n"
            "  exec-name NAME PROGRAM [ARG...]      time exec of PROGRAM until NAME is owned, RUNS times; median\n"
            "  wait-name NAME                       wait until NAME is owned (TIMEOUT)\n"
            "  signals SENDER PATH IFACE MEMBER [TRIGGER-MEMBER COUNT]\n"
            "                                       count matching signals per second ('-' = any)\n"
            "options:\n"
            "  --address ADDR   bus address (default $DBUS_SESSION_BUS_ADDRESS; never another bus)\n"
            "  --warmup N       untimed calls first (default 1000)\n"
            "  --count M        timed calls per target (default 10000)\n"
            "  --rounds R       split them into R blocks taken in turn with the other targets (default 1)\n"
            "  --runs R         exec-name repetitions (default 20)\n"
            "  --timeout S      per-wait limit in seconds (default 10)\n"
            "  --duration S     signals: counting window without a trigger (default 5)\n"
            "  --log FILE       exec-name: the program's stdout and stderr (default /dev/null; appended)\n"
            "  --pid PID        wait-name: give up as soon as PID has exited\n"
            "  --label NAME     first word of the output line (default MODE:MEMBER)\n");
}

static sd_bus *connect_bus(void) {
    sd_bus *bus = NULL;
    const char *address = opt_address ? opt_address : getenv("DBUS_SESSION_BUS_ADDRESS");
    if (!address || !*address) {
        fprintf(stderr, "bus-latency: no bus address: pass --address or set DBUS_SESSION_BUS_ADDRESS\n");
        exit(2);
    }
    int r = sd_bus_new(&bus);
    if (r >= 0)
        r = sd_bus_set_address(bus, address);
    if (r >= 0)
        r = sd_bus_set_bus_client(bus, 1);
    if (r >= 0)
        r = sd_bus_set_description(bus, "bus-latency");
    if (r >= 0)
        r = sd_bus_start(bus);
    if (r < 0) {
        fprintf(stderr, "bus-latency: cannot connect to %s: %s\n", address, strerror(-r));
        exit(1);
    }
    return bus;
}

/* ---- call / get / rows -------------------------------------------------------------------------------------- */

struct target {
    const char *label;
    bool is_get;
    char *a[4]; /* DEST PATH IFACE MEMBER-or-PROPERTY */
    uint64_t *v;
    size_t n;
    long double sum;
};

static int build_message(sd_bus *bus, const struct target *t, sd_bus_message **out) {
    sd_bus_message *m = NULL;
    int r;
    if (t->is_get) {
        r = sd_bus_message_new_method_call(bus, &m, t->a[0], t->a[1], "org.freedesktop.DBus.Properties", "Get");
        if (r >= 0)
            r = sd_bus_message_append(m, "ss", t->a[2], t->a[3]);
    } else {
        r = sd_bus_message_new_method_call(bus, &m, t->a[0], t->a[1], t->a[2], t->a[3]);
    }
    if (r < 0) {
        sd_bus_message_unref(m);
        return r;
    }
    *out = m;
    return 0;
}

/* One call; returns the elapsed nanoseconds of sd_bus_call() alone, or exits on failure. */
static uint64_t timed_call(sd_bus *bus, const struct target *t, sd_bus_message **keep_reply) {
    sd_bus_message *m = NULL, *reply = NULL;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int r = build_message(bus, t, &m);
    if (r < 0) {
        fprintf(stderr, "bus-latency: %s: cannot build the message: %s\n", t->label, strerror(-r));
        exit(1);
    }
    uint64_t t0 = now_ns();
    r = sd_bus_call(bus, m, (uint64_t)(opt_timeout * 1e6), &error, &reply);
    uint64_t t1 = now_ns();
    if (r < 0) {
        fprintf(stderr, "bus-latency: %s: %s %s %s %s.%s failed: %s: %s\n", t->label, t->is_get ? "Get" : "call",
                t->a[0], t->a[1], t->a[2], t->a[3], error.name ? error.name : "errno",
                error.message ? error.message : strerror(-r));
        exit(1);
    }
    sd_bus_error_free(&error);
    sd_bus_message_unref(m);
    if (keep_reply)
        *keep_reply = reply;
    else
        sd_bus_message_unref(reply);
    return t1 - t0;
}

/* The first call of each target shows what comes back, so a wrong target is visible in the log. */
static void first_call(sd_bus *bus, const struct target *t) {
    sd_bus_message *reply = NULL;
    timed_call(bus, t, &reply);
    if (t->is_get) {
        const char *contents = NULL;
        char type = 0;
        if (sd_bus_message_peek_type(reply, &type, &contents) >= 0 && type == 'v' && contents &&
            strcmp(contents, "s") == 0 && sd_bus_message_enter_container(reply, 'v', "s") >= 0) {
            const char *s = NULL;
            if (sd_bus_message_read_basic(reply, 's', &s) >= 0)
                fprintf(stderr, "bus-latency: %s: %s.%s = \"%s\"\n", t->label, t->a[2], t->a[3], s);
        }
    } else {
        fprintf(stderr, "bus-latency: %s: %s.%s answered with signature \"%s\"\n", t->label, t->a[2], t->a[3],
                sd_bus_message_get_signature(reply, true));
    }
    sd_bus_message_unref(reply);
}

/* Every target gets WARMUP untimed calls, then COUNT timed calls in ROUNDS blocks taken in turn (the first target
 * of each round rotates), so that slow drifts of the machine touch every target alike. */
static int run_targets(struct target *t, size_t nt) {
    if (opt_count == 0 || opt_rounds == 0 || opt_rounds > opt_count) {
        fprintf(stderr, "bus-latency: need 1 <= --rounds (%lu) <= --count (%lu)\n", opt_rounds, opt_count);
        return 2;
    }
    sd_bus *bus = connect_bus();
    for (size_t k = 0; k < nt; k++) {
        t[k].v = malloc(opt_count * sizeof *t[k].v);
        if (!t[k].v) {
            fprintf(stderr, "bus-latency: out of memory\n");
            return 1;
        }
        first_call(bus, &t[k]);
    }
    for (size_t k = 0; k < nt; k++)
        for (unsigned long i = 0; i < opt_warmup; i++)
            timed_call(bus, &t[k], NULL);
    for (unsigned long round = 0; round < opt_rounds; round++) {
        unsigned long block = opt_count / opt_rounds + (round < opt_count % opt_rounds);
        for (size_t j = 0; j < nt; j++) {
            struct target *x = &t[(j + round) % nt];
            for (unsigned long i = 0; i < block; i++) {
                uint64_t d = timed_call(bus, x, NULL);
                x->v[x->n++] = d;
                x->sum += d;
            }
        }
    }
    for (size_t k = 0; k < nt; k++) {
        uint64_t *v = t[k].v;
        size_t n = t[k].n;
        qsort(v, n, sizeof *v, cmp_u64);
        printf("%s n=%zu warmup=%lu rounds=%lu min=%.1f p50=%.1f p90=%.1f p99=%.1f max=%.1f mean=%.1f unit=us\n",
               t[k].label, n, opt_warmup, opt_rounds, (double)v[0] / NSEC_PER_USEC,
               (double)percentile(v, n, 0.50) / NSEC_PER_USEC, (double)percentile(v, n, 0.90) / NSEC_PER_USEC,
               (double)percentile(v, n, 0.99) / NSEC_PER_USEC, (double)v[n - 1] / NSEC_PER_USEC,
               (double)(t[k].sum / n) / NSEC_PER_USEC);
        free(v);
    }
    fflush(stdout);
    sd_bus_flush_close_unref(bus);
    return 0;
}

static int run_calls(bool is_get, int argc, char **argv) {
    if (argc != 4) {
        usage(stderr);
        return 2;
    }
    static char deflabel[300];
    snprintf(deflabel, sizeof deflabel, "%s:%s", is_get ? "get" : "call", argv[3]);
    struct target t = {.label = opt_label ? opt_label : deflabel, .is_get = is_get,
                       .a = {argv[0], argv[1], argv[2], argv[3]}};
    return run_targets(&t, 1);
}

/* rows LABEL=call,DEST,PATH,IFACE,MEMBER | LABEL=get,DEST,PATH,IFACE,PROPERTY ... (commas cannot occur in D-Bus
 * names, paths or members). */
static int run_rows(int argc, char **argv) {
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    struct target *t = calloc((size_t)argc, sizeof *t);
    if (!t) {
        fprintf(stderr, "bus-latency: out of memory\n");
        return 1;
    }
    for (int k = 0; k < argc; k++) {
        char *spec = strdup(argv[k]), *eq = strchr(spec, '=');
        char *f[6] = {0};
        int nf = 0;
        if (eq) {
            *eq = 0;
            char *save = NULL;
            for (char *tok = strtok_r(eq + 1, ",", &save); tok && nf < 6; tok = strtok_r(NULL, ",", &save))
                f[nf++] = tok;
        }
        if (!eq || !*spec || nf != 5 ||
            (strcmp(f[0], "call") != 0 && strcmp(f[0], "get") != 0)) {
            fprintf(stderr, "bus-latency: bad row '%s': want LABEL=call,DEST,PATH,IFACE,MEMBER or "
                            "LABEL=get,DEST,PATH,IFACE,PROPERTY\n", argv[k]);
            return 2;
        }
        t[k] = (struct target){.label = spec, .is_get = f[0][0] == 'g', .a = {f[1], f[2], f[3], f[4]}};
    }
    return run_targets(t, (size_t)argc);
}

/* ---- name watching ------------------------------------------------------------------------------------------- */

struct name_watch {
    const char *name;
    int owned;          /* last state seen in NameOwnerChanged (or NameHasOwner): 1, 0, or -1 unknown */
    uint64_t changed_ns; /* when this process dispatched that signal */
};

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    (void)error;
    struct name_watch *w = userdata;
    const char *name = NULL, *old_owner = NULL, *new_owner = NULL;
    uint64_t t = now_ns();
    if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
        return 0;
    if (strcmp(name, w->name) == 0) {
        w->owned = new_owner[0] != '\0';
        w->changed_ns = t;
    }
    return 0;
}

static int watch_name(sd_bus *bus, struct name_watch *w) {
    char match[512];
    int n = snprintf(match, sizeof match,
                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'",
                     w->name);
    if (n < 0 || (size_t)n >= sizeof match) {
        fprintf(stderr, "bus-latency: name too long: %s\n", w->name);
        exit(2);
    }
    /* Synchronous: when this returns, the bus has the match, so no change can be missed. */
    int r = sd_bus_add_match(bus, NULL, match, on_name_owner_changed, w);
    if (r < 0) {
        fprintf(stderr, "bus-latency: cannot subscribe to NameOwnerChanged: %s\n", strerror(-r));
        exit(1);
    }
    return 0;
}

static int name_has_owner(sd_bus *bus, const char *name) {
    sd_bus_message *reply = NULL;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int has = 0;
    int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", &error, &reply, "s", name);
    if (r >= 0)
        r = sd_bus_message_read(reply, "b", &has);
    if (r < 0) {
        fprintf(stderr, "bus-latency: NameHasOwner(%s): %s\n", name, error.message ? error.message : strerror(-r));
        exit(1);
    }
    sd_bus_error_free(&error);
    sd_bus_message_unref(reply);
    return has;
}

/* Dispatch everything already queued. */
static void drain(sd_bus *bus) {
    int r;
    while ((r = sd_bus_process(bus, NULL)) > 0)
        ;
    if (r < 0) {
        fprintf(stderr, "bus-latency: sd_bus_process: %s\n", strerror(-r));
        exit(1);
    }
}

/* Process the bus until w->owned == want, the deadline passes (-ETIMEDOUT) or `child` exits (-ECHILD,
 * status in *status). child <= 0: no child to watch. Sleeps at most 10 ms at a time so a dead child is noticed
 * quickly; the bus fd still wakes the loop at once when the name changes. */
static int wait_name_state(sd_bus *bus, struct name_watch *w, int want, uint64_t deadline, pid_t child,
                           int *status) {
    for (;;) {
        int r = sd_bus_process(bus, NULL);
        if (r < 0) {
            fprintf(stderr, "bus-latency: sd_bus_process: %s\n", strerror(-r));
            exit(1);
        }
        if (w->owned == want)
            return 0;
        if (r > 0)
            continue;
        if (child > 0) {
            pid_t p = waitpid(child, status, WNOHANG);
            if (p == child)
                return -ECHILD;
        }
        uint64_t now = now_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        uint64_t slice = deadline - now;
        if (child > 0 && slice > 10 * NSEC_PER_MSEC)
            slice = 10 * NSEC_PER_MSEC;
        r = sd_bus_wait(bus, slice / NSEC_PER_USEC);
        if (r < 0 && r != -EINTR) {
            fprintf(stderr, "bus-latency: sd_bus_wait: %s\n", strerror(-r));
            exit(1);
        }
    }
}

static void describe_status(int status, char *buf, size_t len) {
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "status 0x%x", status);
}

/* ---- wait-name ----------------------------------------------------------------------------------------------- */

static int run_wait_name(int argc, char **argv) {
    if (argc != 1) {
        usage(stderr);
        return 2;
    }
    sd_bus *bus = connect_bus();
    struct name_watch w = {.name = argv[0], .owned = -1};
    watch_name(bus, &w);
    if (name_has_owner(bus, w.name))
        return 0;
    uint64_t deadline = now_ns() + (uint64_t)(opt_timeout * NSEC_PER_SEC);
    for (;;) {
        uint64_t step = now_ns() + 20 * NSEC_PER_MSEC;
        int r = wait_name_state(bus, &w, 1, step < deadline ? step : deadline, 0, NULL);
        if (r == 0)
            return 0;
        if (opt_pid > 0 && kill(opt_pid, 0) < 0 && errno == ESRCH) {
            fprintf(stderr, "bus-latency: process %d exited before %s appeared on the bus\n", (int)opt_pid, w.name);
            return 1;
        }
        if (opt_pid > 0) {
            /* A zombie child of someone else still answers kill(0); look at its state. */
            char path[64], buf[512];
            snprintf(path, sizeof path, "/proc/%d/stat", (int)opt_pid);
            FILE *f = fopen(path, "r");
            if (f) {
                size_t n = fread(buf, 1, sizeof buf - 1, f);
                fclose(f);
                buf[n] = 0;
                char *rp = strrchr(buf, ')');
                if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X')) {
                    fprintf(stderr, "bus-latency: process %d exited before %s appeared on the bus\n",
                            (int)opt_pid, w.name);
                    return 1;
                }
            }
        }
        if (now_ns() >= deadline) {
            fprintf(stderr, "bus-latency: %s did not appear on the bus within %.1f s\n", w.name, opt_timeout);
            return 1;
        }
    }
}

/* ---- exec-name ----------------------------------------------------------------------------------------------- */

static pid_t spawn(char **argv) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bus-latency: fork: %s\n", strerror(errno));
        exit(1);
    }
    if (pid > 0)
        return pid;
    /* Child: die with us, so an interrupted benchmark leaves nothing behind. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open(opt_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    dprintf(2, "bus-latency: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* SIGTERM the child, SIGKILL it after the timeout; returns the time from SIGTERM to its exit. */
static uint64_t stop_child(pid_t pid, int *status) {
    uint64_t t0 = now_ns();
    kill(pid, SIGTERM);
    uint64_t deadline = t0 + (uint64_t)(opt_timeout * NSEC_PER_SEC);
    for (;;) {
        pid_t p = waitpid(pid, status, WNOHANG);
        if (p == pid)
            return now_ns() - t0;
        if (p < 0) {
            fprintf(stderr, "bus-latency: waitpid: %s\n", strerror(errno));
            exit(1);
        }
        if (now_ns() >= deadline) {
            fprintf(stderr, "bus-latency: pid %d ignored SIGTERM for %.1f s; sending SIGKILL\n", (int)pid,
                    opt_timeout);
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return now_ns() - t0;
        }
        struct timespec ts = {0, 200 * 1000}; /* 0.2 ms */
        nanosleep(&ts, NULL);
    }
}

static int run_exec_name(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (opt_runs == 0) {
        fprintf(stderr, "bus-latency: --runs must be at least 1\n");
        return 2;
    }
    const char *name = argv[0];
    char **prog = argv + 1;
    sd_bus *bus = connect_bus();
    struct name_watch w = {.name = name, .owned = -1};
    watch_name(bus, &w);
    if (name_has_owner(bus, name)) {
        fprintf(stderr, "bus-latency: %s is already owned on this bus; stop its owner first\n", name);
        return 1;
    }

    uint64_t *start = calloc(opt_runs, sizeof *start), *stop = calloc(opt_runs, sizeof *stop);
    if (!start || !stop) {
        fprintf(stderr, "bus-latency: out of memory\n");
        return 1;
    }
    unsigned long bad_exits = 0;
    for (unsigned long i = 0; i < opt_runs; i++) {
        drain(bus);
        w.owned = 0;
        uint64_t t0 = now_ns();
        pid_t pid = spawn(prog);
        int status = 0;
        int r = wait_name_state(bus, &w, 1, t0 + (uint64_t)(opt_timeout * NSEC_PER_SEC), pid, &status);
        if (r == -ECHILD) {
            char how[128];
            describe_status(status, how, sizeof how);
            fprintf(stderr, "bus-latency: run %lu: %s %s before %s appeared on the bus (its output: %s)\n", i + 1,
                    prog[0], how, name, opt_log);
            return 1;
        }
        if (r == -ETIMEDOUT) {
            stop_child(pid, &status);
            fprintf(stderr, "bus-latency: run %lu: %s did not appear within %.1f s of exec of %s (its output: %s)\n",
                    i + 1, name, opt_timeout, prog[0], opt_log);
            return 1;
        }
        start[i] = w.changed_ns - t0;

        stop[i] = stop_child(pid, &status);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            char how[128];
            describe_status(status, how, sizeof how);
            fprintf(stderr, "bus-latency: run %lu: after SIGTERM %s %s (expected exit status 0)\n", i + 1, prog[0],
                    how);
            bad_exits++;
        }
        /* The connection is closed with the process; wait for the bus to drop the name before the next run. */
        r = wait_name_state(bus, &w, 0, now_ns() + (uint64_t)(opt_timeout * NSEC_PER_SEC), 0, NULL);
        if (r < 0 && name_has_owner(bus, name)) {
            fprintf(stderr, "bus-latency: run %lu: %s is still owned after its owner exited\n", i + 1, name);
            return 1;
        }
        fprintf(stderr, "bus-latency: run %lu: %s owned %.2f ms after exec; stopped in %.2f ms\n", i + 1, name,
                (double)start[i] / NSEC_PER_MSEC, (double)stop[i] / NSEC_PER_MSEC);
    }

    double stop_med = median_us(stop, opt_runs);
    double med = median_us(start, opt_runs); /* sorts start[] */
    char deflabel[300];
    snprintf(deflabel, sizeof deflabel, "exec-name:%s", name);
    printf("%s runs=%lu min=%.1f median=%.1f p90=%.1f max=%.1f stop_median=%.1f bad_exits=%lu unit=us\n",
           opt_label ? opt_label : deflabel, opt_runs, (double)start[0] / NSEC_PER_USEC, med,
           (double)percentile(start, opt_runs, 0.90) / NSEC_PER_USEC, (double)start[opt_runs - 1] / NSEC_PER_USEC,
           stop_med, bad_exits);
    free(start);
    free(stop);
    sd_bus_flush_close_unref(bus);
    return 0;
}

/* ---- signals ------------------------------------------------------------------------------------------------- */

struct signal_count {
    unsigned long n;
    uint64_t first_ns, last_ns;
};

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    (void)m;
    (void)error;
    struct signal_count *c = userdata;
    uint64_t t = now_ns();
    if (c->n++ == 0)
        c->first_ns = t;
    c->last_ns = t;
    return 0;
}

struct trigger_state {
    int done;
    int failed;
};

static int on_trigger_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    (void)error;
    struct trigger_state *s = userdata;
    s->done = 1;
    const sd_bus_error *e = sd_bus_message_get_error(m);
    if (e) {
        fprintf(stderr, "bus-latency: trigger failed: %s: %s\n", e->name, e->message ? e->message : "");
        s->failed = 1;
    }
    return 0;
}

static const char *any(const char *s) { return strcmp(s, "-") == 0 ? NULL : s; }

static int run_signals(int argc, char **argv) {
    if (argc != 4 && argc != 6) {
        usage(stderr);
        return 2;
    }
    const char *sender = any(argv[0]), *path = any(argv[1]), *iface = any(argv[2]), *member = argv[3];
    unsigned long want = 0;
    if (argc == 6) {
        char *end = NULL;
        want = strtoul(argv[5], &end, 10);
        if (!sender || !path || !iface || !*argv[5] || *end || want == 0 || want > UINT32_MAX) {
            fprintf(stderr, "bus-latency: a trigger needs SENDER, PATH and IFACE and a COUNT from 1 to %u\n",
                    UINT32_MAX);
            return 2;
        }
    }
    sd_bus *bus = connect_bus();
    struct signal_count c = {0};
    int r = sd_bus_match_signal(bus, NULL, sender, path, iface, member, on_signal, &c);
    if (r < 0) {
        fprintf(stderr, "bus-latency: cannot subscribe: %s\n", strerror(-r));
        return 1;
    }
    struct trigger_state ts = {0};
    uint64_t t_start = now_ns();
    uint64_t deadline = t_start + (uint64_t)((want ? opt_timeout : opt_duration) * NSEC_PER_SEC);
    if (want) {
        r = sd_bus_call_method_async(bus, NULL, sender, path, iface, argv[4], on_trigger_reply, &ts, "u",
                                     (uint32_t)want);
        if (r < 0) {
            fprintf(stderr, "bus-latency: cannot send the trigger: %s\n", strerror(-r));
            return 1;
        }
    }
    for (;;) {
        r = sd_bus_process(bus, NULL);
        if (r < 0) {
            fprintf(stderr, "bus-latency: sd_bus_process: %s\n", strerror(-r));
            return 1;
        }
        if (ts.failed)
            return 1;
        if (want && c.n >= want)
            break;
        if (r > 0)
            continue;
        uint64_t now = now_ns();
        if (now >= deadline)
            break;
        r = sd_bus_wait(bus, (deadline - now) / NSEC_PER_USEC);
        if (r < 0 && r != -EINTR) {
            fprintf(stderr, "bus-latency: sd_bus_wait: %s\n", strerror(-r));
            return 1;
        }
    }
    uint64_t t_end = now_ns();
    if (want && c.n < want)
        fprintf(stderr, "bus-latency: only %lu of %lu signals arrived within %.1f s\n", c.n, want, opt_timeout);
    /* With a trigger, the window runs from the call to the last signal; without, it is the whole duration. */
    double seconds = want ? (double)(c.last_ns - t_start) / NSEC_PER_SEC : (double)(t_end - t_start) / NSEC_PER_SEC;
    char deflabel[300];
    snprintf(deflabel, sizeof deflabel, "signals:%s", member);
    printf("%s signals=%lu seconds=%.3f rate=%.1f unit=signals/s\n", opt_label ? opt_label : deflabel, c.n, seconds,
           seconds > 0 ? (double)c.n / seconds : 0.0);
    sd_bus_flush_close_unref(bus);
    return (want && c.n < want) ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------------------------------------------- */

static unsigned long parse_ulong(const char *opt, const char *s) {
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || s[0] == '-') {
        fprintf(stderr, "bus-latency: %s needs a non-negative integer, not '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

static double parse_seconds(const char *opt, const char *s) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !*s || *end || !(v > 0) || v > 86400) {
        fprintf(stderr, "bus-latency: %s needs a number of seconds above 0, not '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"address", required_argument, NULL, 'a'}, {"warmup", required_argument, NULL, 'w'},
        {"count", required_argument, NULL, 'n'},   {"runs", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'}, {"duration", required_argument, NULL, 'd'},
        {"log", required_argument, NULL, 'o'},     {"pid", required_argument, NULL, 'p'},
        {"label", required_argument, NULL, 'l'},   {"rounds", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    /* '+': stop at the mode, so a program's own options after exec-name are left alone. */
    while ((c = getopt_long(argc, argv, "+a:w:n:r:R:t:d:o:p:l:h", options, NULL)) != -1) {
        switch (c) {
        case 'a': opt_address = optarg; break;
        case 'w': opt_warmup = parse_ulong("--warmup", optarg); break;
        case 'n': opt_count = parse_ulong("--count", optarg); break;
        case 'r': opt_runs = parse_ulong("--runs", optarg); break;
        case 't': opt_timeout = parse_seconds("--timeout", optarg); break;
        case 'd': opt_duration = parse_seconds("--duration", optarg); break;
        case 'o': opt_log = optarg; break;
        case 'p': opt_pid = (pid_t)parse_ulong("--pid", optarg); break;
        case 'l': opt_label = optarg; break;
        case 'R': opt_rounds = parse_ulong("--rounds", optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[optind];
    int rest = argc - optind - 1;
    char **args = argv + optind + 1;
    if (strcmp(mode, "call") == 0)
        return run_calls(false, rest, args);
    if (strcmp(mode, "get") == 0)
        return run_calls(true, rest, args);
    if (strcmp(mode, "rows") == 0)
        return run_rows(rest, args);
    if (strcmp(mode, "exec-name") == 0)
        return run_exec_name(rest, args);
    if (strcmp(mode, "wait-name") == 0)
        return run_wait_name(rest, args);
    if (strcmp(mode, "signals") == 0)
        return run_signals(rest, args);
    fprintf(stderr, "bus-latency: unknown mode '%s'\n", mode);
    usage(stderr);
    return 2;
}
