// CBerthdEarly: code that must run in berthd before main and before any thread exists.
#ifndef CBERTHD_EARLY_H
#define CBERTHD_EARLY_H
// Returns 1 when the constructor blocked the daemon's signals (SIGTERM, SIGINT, SIGHUP, SIGUSR2).
int cberthd_signals_blocked(void);
#endif
