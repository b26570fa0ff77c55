#include "CBerthShim.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

sd_bus_vtable cberth_vtable_start(uint64_t flags) {
    sd_bus_vtable v = SD_BUS_VTABLE_START(flags);
    return v;
}

sd_bus_vtable cberth_vtable_end(void) {
    sd_bus_vtable v = SD_BUS_VTABLE_END;
    return v;
}

sd_bus_vtable cberth_vtable_method(const char *member, const char *signature, const char *result,
                                   const char *names, sd_bus_message_handler_t handler, uint64_t flags) {
    sd_bus_vtable v = {0};
    v.type = _SD_BUS_VTABLE_METHOD;
    v.flags = flags;
    v.x.method.member = member;
    v.x.method.signature = signature;
    v.x.method.result = result;
    v.x.method.handler = handler;
    v.x.method.offset = 0;
    v.x.method.names = names;
    return v;
}

sd_bus_vtable cberth_vtable_property(const char *member, const char *signature, sd_bus_property_get_t getter,
                                     sd_bus_property_set_t setter, uint64_t flags) {
    sd_bus_vtable v = {0};
    v.type = setter ? _SD_BUS_VTABLE_WRITABLE_PROPERTY : _SD_BUS_VTABLE_PROPERTY;
    v.flags = flags;
    v.x.property.member = member;
    v.x.property.signature = signature;
    v.x.property.get = getter;
    v.x.property.set = setter;
    v.x.property.offset = 0;
    return v;
}

sd_bus_vtable cberth_vtable_signal(const char *member, const char *signature, const char *names, uint64_t flags) {
    sd_bus_vtable v = {0};
    v.type = _SD_BUS_VTABLE_SIGNAL;
    v.flags = flags;
    v.x.signal.member = member;
    v.x.signal.signature = signature;
    v.x.signal.names = names;
    return v;
}

int cberth_ppoll(struct pollfd *fds, nfds_t count, uint64_t timeout_usec) {
    if (timeout_usec == UINT64_MAX) return ppoll(fds, count, NULL, NULL);
    struct timespec ts = {.tv_sec = (time_t)(timeout_usec / 1000000u), .tv_nsec = (long)(timeout_usec % 1000000u) * 1000};
    return ppoll(fds, count, &ts, NULL);
}

static uint64_t now_usec(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t cberth_now_monotonic_usec(void) { return now_usec(CLOCK_MONOTONIC); }
uint64_t cberth_now_realtime_usec(void) { return now_usec(CLOCK_REALTIME); }

int cberth_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int cberth_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

sqlite3_destructor_type cberth_sqlite_transient(void) { return SQLITE_TRANSIENT; }

pid_t cberth_spawn_detached(const char *path, char *const argv[], char *const envp[], const char *log_path) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    const char *out = log_path ? log_path : "/dev/null";
    posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int r = posix_spawn(&pid, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return r == 0 ? pid : -r;
}

#include <sys/vfs.h>

long cberth_fs_magic(int fd) {
    struct statfs info;
    if (fstatfs(fd, &info) != 0) return -1;
    return (long)info.f_type;
}
