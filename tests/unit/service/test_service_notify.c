/* The notification protocol (sd_notify(3)) as systemd sees it: a datagram socket of the test's own stands in for the service
 * manager ($NOTIFY_SOCKET), and the messages that arrive on it are checked: nothing without
 * the socket, READY=1 with STATUS, WATCHDOG=1 pings at half of WATCHDOG_USEC from the loop,
 * STOPPING=1 once, and no pings after it. The module keeps one state per process, so the
 * tests run in this order. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "service/service_notify.h"

static int manager = -1;
static char manager_path[108];

/* The next datagram within `ms`, as a string ("" when none came). */
static void next_message(char *out, size_t cap, int ms) {
    out[0] = '\0';
    struct pollfd p = {.fd = manager, .events = POLLIN};
    if (poll(&p, 1, ms) != 1) return;
    ssize_t n = recv(manager, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
}

static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop for `ms` (the watchdog timer is unreferenced: a timer of ours keeps it going). */
static void run_for(uv_loop_t *loop, uint64_t ms) {
    uv_timer_t stop;
    uv_timer_init(loop, &stop);
    uv_timer_start(&stop, on_stop, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&stop, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void test_nothing_is_sent_without_a_service_manager(void **state) {
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_int_equal(service_notify_ready(&loop, "ignored"), 0);
    run_for(&loop, 20);
    assert_int_equal(uv_loop_close(&loop), 0); /* no watchdog handle was made */
}

/* systemd may name an abstract socket ("@name"); a watchdog asked for another process
 * (WATCHDOG_PID not ours, as after a fork) is not this one's to ping. */
static void test_abstract_socket_and_a_watchdog_for_another_process(void **state) {
    (void)state;
    int abstract = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(abstract >= 0);
    char name[64];
    snprintf(name, sizeof name, "@browserd-notify-test-%d", (int)getpid());
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, name, strlen(name));
    sa.sun_path[0] = '\0';
    assert_int_equal(bind(abstract, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))), 0);
    setenv("NOTIFY_SOCKET", name, 1);
    char other[32];
    snprintf(other, sizeof other, "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", other, 1);
    setenv("WATCHDOG_USEC", "100000", 1);
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_int_equal(service_notify_ready(&loop, "abstract"), 1);
    int saved = manager;
    manager = abstract;
    char msg[512];
    next_message(msg, sizeof msg, 1000);
    assert_string_equal(msg, "READY=1\nSTATUS=abstract");
    run_for(&loop, 120);
    next_message(msg, sizeof msg, 0);
    assert_string_equal(msg, ""); /* no pings */
    assert_int_equal(uv_loop_close(&loop), 0); /* and no watchdog handle */
    manager = saved;
    close(abstract);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
}

static void test_ready_watchdog_and_stopping_reach_the_manager(void **state) {
    (void)state;
    manager = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(manager >= 0);
    snprintf(manager_path, sizeof manager_path, "/tmp/browserd-notify-test-%d", (int)getpid());
    unlink(manager_path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", manager_path);
    assert_int_equal(bind(manager, (struct sockaddr *)&sa, sizeof sa), 0);
    setenv("NOTIFY_SOCKET", manager_path, 1);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    setenv("WATCHDOG_USEC", "100000", 1); /* 100 ms: a ping every 50 ms */

    uv_loop_t loop;
    uv_loop_init(&loop);
    char msg[512];
    assert_int_equal(service_notify_ready(&loop, "api=http://127.0.0.1:8080"), 1);
    next_message(msg, sizeof msg, 1000);
    assert_string_equal(msg, "READY=1\nSTATUS=api=http://127.0.0.1:8080");

    run_for(&loop, 300);
    int pings = 0;
    for (;;) {
        next_message(msg, sizeof msg, 0);
        if (!msg[0]) break;
        assert_string_equal(msg, "WATCHDOG=1");
        pings++;
    }
    assert_in_range(pings, 3, 7); /* 300 ms / 50 ms, give or take a slow machine */

    assert_int_equal(service_notify_stopping("stopping: SIGTERM"), 1);
    next_message(msg, sizeof msg, 1000);
    assert_string_equal(msg, "STOPPING=1\nSTATUS=stopping: SIGTERM");
    assert_int_equal(service_notify_stopping("again"), 0); /* once */
    run_for(&loop, 150);
    next_message(msg, sizeof msg, 0);
    assert_string_equal(msg, ""); /* neither pings nor a second STOPPING */
    assert_int_equal(uv_loop_close(&loop), 0); /* the watchdog handle is closed */
    close(manager);
    unlink(manager_path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_is_sent_without_a_service_manager),
        cmocka_unit_test(test_abstract_socket_and_a_watchdog_for_another_process),
        cmocka_unit_test(test_ready_watchdog_and_stopping_reach_the_manager),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
