#include "service/service_notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static uv_timer_t watchdog;
static bool watchdog_running;
static bool stopping_sent;

/* One datagram to $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@'), as
 * sd_notify(3) sends it. 1 when sent, 0 without a manager, a negative errno on failure. */
static int notify(const char *message) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path) return -EINVAL;
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@') addr.sun_path[0] = '\0';
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t sent = sendto(fd, message, strlen(message), MSG_NOSIGNAL, (const struct sockaddr *)&addr, addr_len);
    int rc = sent < 0 ? -errno : 1;
    close(fd);
    return rc;
}

/* The watchdog interval systemd asked this process for (WATCHDOG_USEC, when WATCHDOG_PID is
 * unset or ours), in microseconds; 0 when none. */
static uint64_t watchdog_usec(void) {
    const char *usec = getenv("WATCHDOG_USEC");
    if (!usec || !*usec) return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && *pid) {
        char *end;
        unsigned long long p = strtoull(pid, &end, 10);
        if (*end || p != (unsigned long long)getpid()) return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(usec, &end, 10);
    if (errno || *end) return 0;
    return (uint64_t)v;
}

static void on_watchdog(uv_timer_t *t) {
    (void)t;
    (void)notify("WATCHDOG=1");
}

static int notify_with_status(const char *what, const char *status) {
    char message[512];
    snprintf(message, sizeof message, "%s\nSTATUS=%s", what, status);
    return notify(message);
}

int service_notify_ready(uv_loop_t *loop, const char *status) {
    int rc = notify_with_status("READY=1", status ? status : "ready");
    uint64_t usec = watchdog_usec();
    /* the manager wants pings from this very process, every `usec` at the latest */
    if (rc > 0 && !watchdog_running && usec > 0) {
        uint64_t ms = usec / 2000;
        if (ms == 0) ms = 1;
        uv_timer_init(loop, &watchdog);
        uv_timer_start(&watchdog, on_watchdog, ms, ms);
        uv_unref((uv_handle_t *)&watchdog);
        watchdog_running = true;
    }
    return rc;
}

int service_notify_stopping(const char *status) {
    if (stopping_sent) return 0;
    stopping_sent = true;
    if (watchdog_running) {
        uv_timer_stop(&watchdog);
        uv_close((uv_handle_t *)&watchdog, NULL);
        watchdog_running = false;
    }
    return notify_with_status("STOPPING=1", status ? status : "stopping");
}
