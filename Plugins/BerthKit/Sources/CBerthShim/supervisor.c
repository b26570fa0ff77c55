// The supervisor's C side: clone(CLONE_VM | CLONE_VFORK)/exec with only async-signal-safe calls in the child, reaping, a SIGCHLD handler
// that wakes the epoll thread, credential-checked datagrams and epoll without the packed struct.
#include "CBerthShim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Everything below until the end of child_entry runs between clone and exec in a child that shares the parent's
// memory (CLONE_VM | CLONE_VFORK, as glibc's posix_spawn does; the parent thread is suspended until the child
// execs or exits): only async-signal-safe calls, no malloc, no locks, no stdio, no writes to shared data. Not
// copying the page tables, as fork would, saves milliseconds per spawn in a large multithreaded daemon.
static void child_fail(int report_fd, int step) {
    int payload[2] = {step, errno};
    ssize_t unused = write(report_fd, payload, sizeof payload);
    (void)unused;
    _exit(127);
}

// Moves fd to a number >= 10 so that the dup2 onto 0..2 below cannot clobber another source fd.
static int child_lift(int fd, int report_fd) {
    int lifted = fcntl(fd, F_DUPFD, 10);
    if (lifted < 0) child_fail(report_fd, CBERTH_SPAWN_STEP_SETUP);
    return lifted;
}

static void child_main(const cberth_spawn_request *r, pid_t parent, int report_fd) {
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        (void)sigaction(sig, &sa, NULL);  // fails harmlessly for SIGKILL, SIGSTOP and the reserved ones
    }
    if (setpgid(0, 0) != 0) child_fail(report_fd, CBERTH_SPAWN_STEP_SETUP);
    // Into the unit's own cgroup (a delegated one) before anything runs: every descendant is born in it.
    if (r->cgroup_procs_fd >= 0 && write(r->cgroup_procs_fd, "0", 1) != 1) child_fail(report_fd, CBERTH_SPAWN_STEP_SETUP);
    if (r->pdeathsig != 0) {
        if (prctl(PR_SET_PDEATHSIG, r->pdeathsig, 0, 0, 0) != 0) child_fail(report_fd, CBERTH_SPAWN_STEP_SETUP);
        if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    }
    int in = child_lift(r->stdin_fd, report_fd);
    int out = child_lift(r->stdout_fd, report_fd);
    int err = child_lift(r->stderr_fd, report_fd);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) child_fail(report_fd, CBERTH_SPAWN_STEP_SETUP);
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < 4096; fd++) (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (r->cwd != NULL && chdir(r->cwd) != 0) child_fail(report_fd, CBERTH_SPAWN_STEP_CHDIR);
    sigset_t empty;
    sigemptyset(&empty);
    if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0) child_fail(report_fd, CBERTH_SPAWN_STEP_SETUP);
    execve(r->path, r->argv, r->envp);
    child_fail(report_fd, CBERTH_SPAWN_STEP_EXEC);
}

struct child_args {
    const cberth_spawn_request *request;
    pid_t parent;
    int report_fd;
};

static int child_entry(void *raw) {
    struct child_args *args = raw;
    child_main(args->request, args->parent, args->report_fd);
    return 127;  // not reached: child_main execs or exits
}

#define CBERTH_CHILD_STACK (256 * 1024)

int cberth_spawn(const cberth_spawn_request *request, pid_t *pid, int *failed_step) {
    *pid = 0;
    *failed_step = CBERTH_SPAWN_STEP_NONE;
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *failed_step = CBERTH_SPAWN_STEP_FORK;
        return errno;
    }
    void *stack = mmap(NULL, CBERTH_CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        int saved = errno;
        close(report[0]);
        close(report[1]);
        *failed_step = CBERTH_SPAWN_STEP_FORK;
        return saved;
    }
    // Block every signal around clone so that no handler of ours runs in the child before exec. The child has
    // its own copy of the dispositions (no CLONE_SIGHAND) and resets them; the read end of the report pipe is
    // close-on-exec, so the child never holds it past exec.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    struct child_args args = {request, getpid(), report[1]};
    pid_t child = clone(child_entry, (char *)stack + CBERTH_CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, CBERTH_CHILD_STACK);
    close(report[1]);
    if (child < 0) {
        close(report[0]);
        *failed_step = CBERTH_SPAWN_STEP_FORK;
        return fork_errno;
    }
    // The report pipe closes at a successful exec (O_CLOEXEC) or carries {step, errno} on failure.
    int payload[2] = {0, 0};
    ssize_t got;
    do {
        got = read(report[0], payload, sizeof payload);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof payload) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        *failed_step = payload[0];
        return payload[1] != 0 ? payload[1] : EIO;
    }
    *pid = child;
    return 0;
}

int cberth_reap(pid_t pid, int *status) {
    int raw = 0;
    pid_t got;
    do {
        got = waitpid(pid, &raw, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return -1;
    if (got == 0) return 0;
    if (WIFEXITED(raw)) *status = WEXITSTATUS(raw);
    else if (WIFSIGNALED(raw)) *status = -WTERMSIG(raw);
    else *status = -1;
    return 1;
}

int cberth_output_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    int flags = fcntl(fds[0], F_GETFL);
    if (flags < 0 || fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) != 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    return 0;
}

static int sigchld_event_fd = -1;
static struct sigaction sigchld_previous;

static void sigchld_handler(int sig, siginfo_t *info, void *context) {
    int saved = errno;
    uint64_t one = 1;
    if (sigchld_event_fd >= 0) {
        ssize_t unused = write(sigchld_event_fd, &one, sizeof one);
        (void)unused;
    }
    if (sigchld_previous.sa_flags & SA_SIGINFO) {
        if (sigchld_previous.sa_sigaction != NULL) sigchld_previous.sa_sigaction(sig, info, context);
    } else if (sigchld_previous.sa_handler != SIG_DFL && sigchld_previous.sa_handler != SIG_IGN) {
        sigchld_previous.sa_handler(sig);
    }
    errno = saved;
}

int cberth_install_sigchld_eventfd(int event_fd) {
    sigchld_event_fd = event_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sigchld_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGCHLD, &sa, &sigchld_previous);
}

ssize_t cberth_recv_with_credentials(int fd, char *buffer, size_t capacity, pid_t *pid, uid_t *uid) {
    *pid = 0;
    *uid = 0;
    if (capacity == 0) {
        errno = EINVAL;
        return -1;
    }
    struct iovec iov = {.iov_base = buffer, .iov_len = capacity - 1};
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = &control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            *pid = cred.pid;
            *uid = cred.uid;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int passed;
                memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
                close(passed);
            }
        }
    }
    size_t length = (size_t)n < capacity - 1 ? (size_t)n : capacity - 1;
    buffer[length] = '\0';
    return (ssize_t)length;
}

int cberth_epoll_ctl(int epoll_fd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event = {.events = events, .data = {.u64 = token}};
    return epoll_ctl(epoll_fd, op, fd, &event);
}

int cberth_epoll_wait(int epoll_fd, uint64_t *tokens, uint32_t *events, int capacity, int timeout_ms) {
    struct epoll_event buffer[64];
    if (capacity > 64) capacity = 64;
    int n = epoll_wait(epoll_fd, buffer, capacity, timeout_ms);
    for (int i = 0; i < n; i++) {
        tokens[i] = buffer[i].data.u64;
        events[i] = buffer[i].events;
    }
    return n;
}

int cberth_timerfd_arm_absolute(int timer_fd, uint64_t monotonic_usec) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    spec.it_value.tv_sec = (time_t)(monotonic_usec / 1000000u);
    spec.it_value.tv_nsec = (long)(monotonic_usec % 1000000u) * 1000;
    return timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

int cberth_eventfd_create(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }
int cberth_timerfd_create(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK); }
void cberth_set_thread_name(const char *name) { (void)pthread_setname_np(pthread_self(), name); }
