/* echo-service: the floor F of the berth benchmarks.
 *
 * A minimal sd-bus service with its own single-threaded sd_bus_process/sd_bus_wait loop. It owns
 * org.berth.BenchEcho (or --name) on the bus given by --address and exports, on /org/berth/BenchEcho (or --path),
 * interface org.berth.BenchEcho (or --interface) with
 *   Ping()            empty reply: the cheapest possible method round trip through sd-bus;
 *   Version s         a const property, read through org.freedesktop.DBus.Properties.Get;
 *   Emit(u count)     emits `count` Tick(t seq) signals, then replies (a source for `bus-latency signals`);
 *   Tick(t seq)       the signal Emit sends.
 * Whatever berthd does per call on top of this is overhead of berthd; this program adds nothing.
 *
 * SIGTERM/SIGINT keep their default action: the kernel closes the connection and the bus drops the name.
 *
 * Build: cc -O2 -o echo-service echo-service.c $(pkg-config --cflags --libs libsystemd)
 * Usage: echo-service [--address ADDR] [--name NAME] [--path PATH] [--interface IFACE] [--version STRING]
 *        (--name/--path/--interface let it stand in for berthd when the harness itself is tested)
 *        ADDR defaults to $DBUS_SESSION_BUS_ADDRESS; there is no fallback to any other bus.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#define MAX_EMIT 1000000u

static const char *opt_path = "/org/berth/BenchEcho";
static const char *opt_interface = "org.berth.BenchEcho";
static const char *version_string = "berth-bench-echo 1";

static int method_ping(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    (void)userdata;
    (void)error;
    return sd_bus_reply_method_return(m, NULL);
}

static int method_emit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    (void)userdata;
    uint32_t count = 0;
    int r = sd_bus_message_read(m, "u", &count);
    if (r < 0)
        return r;
    if (count > MAX_EMIT)
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Emit: count %u is above the limit %u.", count,
                                 MAX_EMIT);
    sd_bus *bus = sd_bus_message_get_bus(m);
    for (uint32_t i = 0; i < count; i++) {
        r = sd_bus_emit_signal(bus, opt_path, opt_interface, "Tick", "t", (uint64_t)i);
        if (r < 0)
            return sd_bus_error_set_errnof(error, -r, "Emit: signal %u of %u could not be queued: %s", i, count,
                                           strerror(-r));
        /* Do not let the write queue grow without bound when the reader is slower than we are. */
        if ((i & 1023) == 1023) {
            r = sd_bus_flush(bus);
            if (r < 0)
                return r;
        }
    }
    return sd_bus_reply_method_return(m, NULL);
}

static int get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
    (void)bus;
    (void)path;
    (void)interface;
    (void)property;
    (void)userdata;
    (void)error;
    return sd_bus_message_append_basic(reply, 's', version_string);
}

static const sd_bus_vtable echo_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Ping", "", "", method_ping, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Emit", "u", "", method_emit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_PROPERTY("Version", "s", get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_SIGNAL("Tick", "t", 0),
    SD_BUS_VTABLE_END,
};

static void usage(FILE *f) {
    fprintf(f, "usage: echo-service [--address ADDR] [--name NAME] [--path PATH] [--interface IFACE] [--version S]\n"
               "  Owns NAME (default org.berth.BenchEcho) on the bus at ADDR (default $DBUS_SESSION_BUS_ADDRESS)\n"
               "  and serves IFACE (default org.berth.BenchEcho) on PATH (default /org/berth/BenchEcho):\n"
               "  Ping(), Emit(u), property Version (default \"berth-bench-echo 1\"), signal Tick(t).\n");
}

int main(int argc, char **argv) {
    const char *address = getenv("DBUS_SESSION_BUS_ADDRESS");
    const char *name = "org.berth.BenchEcho";
    static const struct option options[] = {
        {"address", required_argument, NULL, 'a'},
        {"name", required_argument, NULL, 'n'},
        {"path", required_argument, NULL, 'p'},
        {"interface", required_argument, NULL, 'i'},
        {"version", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "a:n:p:i:v:h", options, NULL)) != -1) {
        switch (c) {
        case 'a': address = optarg; break;
        case 'n': name = optarg; break;
        case 'p': opt_path = optarg; break;
        case 'i': opt_interface = optarg; break;
        case 'v': version_string = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!address || !*address) {
        fprintf(stderr, "echo-service: no bus address: pass --address or set DBUS_SESSION_BUS_ADDRESS\n");
        return 2;
    }

    sd_bus *bus = NULL;
    sd_bus_slot *slot = NULL;
    int r = sd_bus_new(&bus);
    if (r >= 0)
        r = sd_bus_set_address(bus, address);
    if (r >= 0)
        r = sd_bus_set_bus_client(bus, 1);
    if (r >= 0)
        r = sd_bus_set_description(bus, "bench-echo");
    if (r >= 0)
        r = sd_bus_start(bus);
    if (r < 0) {
        fprintf(stderr, "echo-service: cannot connect to %s: %s\n", address, strerror(-r));
        return 1;
    }
    /* Export before taking the name, so a client that sees the name can call at once. */
    r = sd_bus_add_object_vtable(bus, &slot, opt_path, opt_interface, echo_vtable, NULL);
    if (r < 0) {
        fprintf(stderr, "echo-service: cannot export %s on %s: %s\n", opt_interface, opt_path, strerror(-r));
        return 1;
    }
    r = sd_bus_request_name(bus, name, 0); /* no QUEUE flag: fail if someone owns it */
    if (r < 0) {
        fprintf(stderr, "echo-service: cannot own %s: %s\n", name, strerror(-r));
        return 1;
    }

    for (;;) {
        r = sd_bus_process(bus, NULL);
        if (r < 0) {
            if (r == -ECONNRESET || r == -ENOTCONN)
                return 0; /* the bus went away: nothing left to serve */
            fprintf(stderr, "echo-service: sd_bus_process: %s\n", strerror(-r));
            return 1;
        }
        if (r > 0)
            continue; /* more may be queued; drain before sleeping */
        r = sd_bus_wait(bus, UINT64_MAX);
        if (r < 0 && r != -EINTR) {
            fprintf(stderr, "echo-service: sd_bus_wait: %s\n", strerror(-r));
            return 1;
        }
    }
}
