#include "service/service_notify.h"

#include <stdint.h>

#ifdef BROWSERD_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static uv_timer_t watchdog;
static bool watchdog_running;
static bool stopping_sent;

bool service_notify_supported(void) {
#ifdef BROWSERD_HAVE_LIBSYSTEMD
    return true;
#else
    return false;
#endif
}

#ifdef BROWSERD_HAVE_LIBSYSTEMD
static void on_watchdog(uv_timer_t *t) {
    (void)t;
    (void)sd_notify(0, "WATCHDOG=1");
}
#endif

int service_notify_ready(uv_loop_t *loop, const char *status) {
#ifdef BROWSERD_HAVE_LIBSYSTEMD
    int rc = sd_notifyf(0, "READY=1\nSTATUS=%s", status ? status : "ready");
    uint64_t usec = 0;
    /* > 0: the manager wants pings from this very process, every `usec` at the latest */
    if (rc > 0 && !watchdog_running && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        uint64_t ms = usec / 2000;
        if (ms == 0) ms = 1;
        uv_timer_init(loop, &watchdog);
        uv_timer_start(&watchdog, on_watchdog, ms, ms);
        uv_unref((uv_handle_t *)&watchdog);
        watchdog_running = true;
    }
    return rc;
#else
    (void)loop;
    (void)status;
    return 0;
#endif
}

int service_notify_stopping(const char *status) {
    if (stopping_sent) return 0;
    stopping_sent = true;
    if (watchdog_running) {
        uv_timer_stop(&watchdog);
        uv_close((uv_handle_t *)&watchdog, NULL);
        watchdog_running = false;
    }
#ifdef BROWSERD_HAVE_LIBSYSTEMD
    return sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status ? status : "stopping");
#else
    (void)status;
    return 0;
#endif
}
