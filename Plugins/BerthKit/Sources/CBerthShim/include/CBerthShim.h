// CBerthShim: the C libraries BerthKit stands on, plus functions for what Swift cannot import directly
// (sd-bus vtable macros, variadic or macro-only APIs, syscalls without a glibc wrapper).
#ifndef CBERTH_SHIM_H
#define CBERTH_SHIM_H

#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <yaml.h>
#include <sqlite3.h>

// sd-bus vtable entries (the SD_BUS_* macros do not import into Swift).
sd_bus_vtable cberth_vtable_start(uint64_t flags);
sd_bus_vtable cberth_vtable_end(void);
sd_bus_vtable cberth_vtable_method(const char *member, const char *signature, const char *result,
                                   const char *names, sd_bus_message_handler_t handler, uint64_t flags);
sd_bus_vtable cberth_vtable_property(const char *member, const char *signature, sd_bus_property_get_t getter,
                                     sd_bus_property_set_t setter, uint64_t flags);
sd_bus_vtable cberth_vtable_signal(const char *member, const char *signature, const char *names, uint64_t flags);

static const uint64_t CBERTH_VT_DEPRECATED = SD_BUS_VTABLE_DEPRECATED;
static const uint64_t CBERTH_VT_UNPRIVILEGED = SD_BUS_VTABLE_UNPRIVILEGED;
static const uint64_t CBERTH_VT_NO_REPLY = SD_BUS_VTABLE_METHOD_NO_REPLY;
static const uint64_t CBERTH_VT_CONST = SD_BUS_VTABLE_PROPERTY_CONST;
static const uint64_t CBERTH_VT_EMITS_CHANGE = SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE;
static const uint64_t CBERTH_VT_EMITS_INVALIDATION = SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION;
static const uint64_t CBERTH_VT_EXPLICIT = SD_BUS_VTABLE_PROPERTY_EXPLICIT;

// ppoll with a relative timeout in microseconds; UINT64_MAX waits forever.
int cberth_ppoll(struct pollfd *fds, nfds_t count, uint64_t timeout_usec);
// Monotonic clock in microseconds (the clock sd_bus_get_timeout uses).
uint64_t cberth_now_monotonic_usec(void);
uint64_t cberth_now_realtime_usec(void);

// Process helpers (syscalls glibc 2.36 does not wrap, and fork-safe spawning).
int cberth_pidfd_open(pid_t pid);
int cberth_pidfd_send_signal(int pidfd, int sig);
int cberth_set_child_subreaper(void);
int cberth_set_pdeathsig(int sig);

// pthread_setname_np needs _GNU_SOURCE, which Swift's Glibc module does not define.
int cberth_set_thread_name(pthread_t thread, const char *name);

// Starts argv[0] (a path) detached: a new session, stdin from /dev/null, stdout and stderr appended to
// log_path (or /dev/null when NULL), every signal default and unblocked. Returns the pid or -errno.
pid_t cberth_spawn_detached(const char *path, char *const argv[], char *const envp[], const char *log_path);

// SQLite's SQLITE_TRANSIENT is a macro cast that does not import.
sqlite3_destructor_type cberth_sqlite_transient(void);

#endif
