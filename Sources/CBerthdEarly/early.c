#include "CBerthdEarly.h"

#include <pthread.h>
#include <signal.h>

static int blocked = 0;

// Runs before main and before the Swift runtime starts any thread, so every thread inherits the mask and the
// daemon's signals reach only the thread that waits for them with sigwaitinfo.
__attribute__((constructor)) static void cberthd_block_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR2);
    blocked = pthread_sigmask(SIG_BLOCK, &set, 0) == 0;
}

int cberthd_signals_blocked(void) { return blocked; }
