// CBerthShim: the C libraries BerthKit stands on, plus functions for what Swift cannot import directly
// (sd-bus vtable macros, variadic or macro-only APIs, syscalls without a glibc wrapper).
#ifndef CBERTH_SHIM_H
#define CBERTH_SHIM_H

#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/xattr.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
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

static const uint64_t CBERTH_VT_UNPRIVILEGED = SD_BUS_VTABLE_UNPRIVILEGED;
static const uint64_t CBERTH_VT_CONST = SD_BUS_VTABLE_PROPERTY_CONST;
static const uint64_t CBERTH_VT_EMITS_CHANGE = SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE;
static const uint64_t CBERTH_VT_EMITS_INVALIDATION = SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION;

// ppoll with a relative timeout in microseconds; UINT64_MAX waits forever.
int cberth_ppoll(struct pollfd *fds, nfds_t count, uint64_t timeout_usec);
// Monotonic clock in microseconds (the clock sd_bus_get_timeout uses).
uint64_t cberth_now_monotonic_usec(void);
uint64_t cberth_now_realtime_usec(void);

// Process helpers (syscalls glibc 2.36 does not wrap, and fork-safe spawning).
int cberth_pidfd_open(pid_t pid);
int cberth_set_child_subreaper(void);

// Starts argv[0] (a path) detached: a new session, stdin from /dev/null, stdout and stderr appended to
// log_path (or /dev/null when NULL), every signal default and unblocked. Returns the pid or -errno.
pid_t cberth_spawn_detached(const char *path, char *const argv[], char *const envp[], const char *log_path);

// Supervisor: spawning, reaping, SIGCHLD, notify sockets (see Supervisor/ in BerthKit).
// A process to spawn. The child gets its own process group, an empty signal mask, default signal dispositions,
// stdin/stdout/stderr from the given fds (all three required), every other fd closed at exec, the working
// folder, and (when pdeathsig != 0) PR_SET_PDEATHSIG — which fires when the *thread* that spawned exits, so
// spawn only from a thread that lives as long as the daemon.
typedef struct {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    int pdeathsig;
    // An open cgroup.procs of the cgroup the child joins before exec (writing "0"), or -1.
    int cgroup_procs_fd;
} cberth_spawn_request;
// Steps a child may fail at (reported through *failed_step).
enum { CBERTH_SPAWN_STEP_NONE = 0, CBERTH_SPAWN_STEP_FORK = 1, CBERTH_SPAWN_STEP_SETUP = 2,
       CBERTH_SPAWN_STEP_CHDIR = 3, CBERTH_SPAWN_STEP_EXEC = 4 };
// 0 and *pid on success; otherwise the errno of the failed step (the failed child is already reaped).
int cberth_spawn(const cberth_spawn_request *request, pid_t *pid, int *failed_step);
// waitpid(pid, WNOHANG) decoded: 1 and *status (exit code >= 0, or minus the signal number) when reaped,
// 0 when the child is still running, -1 with errno on error.
int cberth_reap(pid_t pid, int *status);
// A close-on-exec pipe whose read end (fds[0]) is non-blocking and write end blocking (for a child's output).
int cberth_output_pipe(int fds[2]);
// Installs a SIGCHLD handler that writes to event_fd (an eventfd) and chains to any previous handler.
int cberth_install_sigchld_eventfd(int event_fd);
// recvmsg on a SOCK_DGRAM socket with SO_PASSCRED: the payload (NUL-terminated, truncated to capacity - 1),
// the sender's pid and uid (0 when absent); any passed fds (sd_notify barriers) are closed. Returns the payload
// length or -1 with errno.
ssize_t cberth_recv_with_credentials(int fd, char *buffer, size_t capacity, pid_t *pid, uid_t *uid);
// epoll without the packed struct: add/modify/delete with a 64-bit token, and a wait that unpacks events.
int cberth_epoll_ctl(int epoll_fd, int op, int fd, uint32_t events, uint64_t token);
int cberth_epoll_wait(int epoll_fd, uint64_t *tokens, uint32_t *events, int capacity, int timeout_ms);
// Non-blocking, close-on-exec eventfd / CLOCK_MONOTONIC timerfd (sys/eventfd.h and sys/timerfd.h do not import).
int cberth_eventfd_create(void);
int cberth_timerfd_create(void);
// Names the calling thread (shown by ps -L, gdb, /proc/PID/task/TID/comm).
void cberth_set_thread_name(const char *name);
// Arms a CLOCK_MONOTONIC timerfd at an absolute time in microseconds (0 disarms).
int cberth_timerfd_arm_absolute(int timer_fd, uint64_t monotonic_usec);

// SQLite's SQLITE_TRANSIENT is a macro cast that does not import.
sqlite3_destructor_type cberth_sqlite_transient(void);

// The file system type (statfs f_type, <linux/magic.h>) of an open file, or -1 with errno (sys/vfs.h does not import).
long cberth_fs_magic(int fd);

// The plugin ABI key (PluginABI.key): built at compile time in whoever compiles it.
#include "berth_abi.h"

#endif
