/* The daemon's word to its service manager: systemd's notification protocol (sd_notify(3)),
 * for a unit of Type=notify. Spoken here (a datagram to $NOTIFY_SOCKET) rather than through
 * libsystemd: linking libsystemd loaded it and six libraries of its own (compression,
 * libgcrypt) into every browserd, about 1 MB of its idle RSS, for three short messages.
 *
 * READY=1 once browserd listens (systemd starts the units that wait for it only then),
 * STOPPING=1 when it begins to stop, and WATCHDOG=1 at half the unit's WatchdogSec= from a
 * timer of the event loop, so that a loop that hangs stops the pings and systemd restarts the
 * daemon. Outside a service manager ($NOTIFY_SOCKET unset) each call does nothing.
 *
 * One per process, loop thread only. */
#ifndef BROWSERD_SERVICE_NOTIFY_H
#define BROWSERD_SERVICE_NOTIFY_H

#include <stdbool.h>
#include <uv.h>

/* READY=1 with STATUS=status (borrowed), and the watchdog's pings started on `loop` when the
 * service manager asked for them (WATCHDOG_USEC for this process). The watchdog timer does not
 * keep the loop alive; service_notify_stopping closes it. Returns 1 when the manager was told,
 * 0 when there is none, a negative errno when telling it failed. */
int service_notify_ready(uv_loop_t *loop, const char *status);

/* STOPPING=1 with STATUS=status, once (later calls do nothing), and the watchdog closed (the
 * loop must run afterwards for its handle to close). Same returns as service_notify_ready. */
int service_notify_stopping(const char *status);

#endif
