/* The driver broker (browserd __webdriver-netns), run in a child of the test: its network
 * namespace is its own (the sockets it hands over live there, not in ours), it hands over the
 * listening attach address and connections to the driver's port, and it ends the driver when
 * browserd lets go of it. The "driver" is a small Python server on the driver's port. Skipped
 * where this machine allows no network namespace (neither root nor user namespaces). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "webdriver/driver_netns.h"

static const char fake_driver[] =
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', 9515)); s.listen()\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    if c.recv(16) == b'ping': c.sendall(b'pong')\n"
    "    c.close()\n";

static pid_t start_broker(const char *driver, int *sock) {
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pair[1], DRIVER_NETNS_SOCKET_FD);
        if (pair[0] != DRIVER_NETNS_SOCKET_FD) close(pair[0]);
        char parent_s[24];
        snprintf(parent_s, sizeof parent_s, "%ld", (long)parent);
        char *argv[] = {"browserd", DRIVER_NETNS_COMMAND, "--parent", parent_s, "--", (char *)driver, "-c",
                        (char *)fake_driver, NULL};
        _exit(driver_netns_main(8, argv));
    }
    close(pair[1]);
    *sock = pair[0];
    return pid;
}

/* The next message of the broker (waits up to 5 s). */
static long next_message(int sock, char *buf, size_t cap, int *fd) {
    struct pollfd p = {.fd = sock, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) return -ETIMEDOUT;
    return driver_netns_receive(sock, buf, cap, fd);
}

static ino_t netns_of_socket(int fd) {
    int ns = ioctl(fd, SIOCGSKNS);
    assert_true(ns >= 0);
    struct stat st;
    assert_int_equal(fstat(ns, &st), 0);
    close(ns);
    return st.st_ino;
}

static ino_t own_netns(void) {
    struct stat st;
    assert_int_equal(stat("/proc/self/ns/net", &st), 0);
    return st.st_ino;
}

static int wait_exit(pid_t pid) {
    for (int i = 0; i < 500; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    return -1000;
}

static void test_broker_hands_over_sockets_of_its_own_namespace(void **state) {
    (void)state;
    int sock;
    pid_t pid = start_broker("/usr/bin/python3", &sock);
    char msg[DRIVER_NETNS_MAX_MESSAGE];
    int fd = -1;
    assert_true(next_message(sock, msg, sizeof msg, &fd) > 0);
    if (strncmp(msg, "error unshare", 13) == 0) {
        close(sock);
        wait_exit(pid);
        skip(); /* no network namespace here */
    }
    assert_string_equal(msg, "ok");
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(ntohs(a.sin_port), DRIVER_NETNS_CDP_PORT);
    assert_int_equal(ntohl(a.sin_addr.s_addr), INADDR_LOOPBACK);
    assert_true(netns_of_socket(fd) != own_netns());
    close(fd);

    /* the driver starts listening a little later: "error connect" until then */
    int conn = -1;
    for (int i = 0; i < 200 && conn < 0; i++) {
        assert_int_equal(send(sock, "connect", 7, 0), 7);
        assert_true(next_message(sock, msg, sizeof msg, &conn) > 0);
        if (conn < 0) {
            assert_non_null(strstr(msg, "error connect: "));
            struct timespec ts = {0, 25 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(conn >= 0);
    assert_true(netns_of_socket(conn) != own_netns());
    assert_int_equal(write(conn, "ping", 4), 4);
    char pong[8] = "";
    assert_int_equal(read(conn, pong, sizeof pong), 4);
    assert_memory_equal(pong, "pong", 4);
    close(conn);

    /* browserd lets go: the broker kills the driver and exits */
    close(sock);
    assert_int_equal(wait_exit(pid), 0);
}

static void test_broker_reports_a_driver_that_cannot_run(void **state) {
    (void)state;
    int sock;
    pid_t pid = start_broker("/nonexistent/chromedriver", &sock);
    char msg[DRIVER_NETNS_MAX_MESSAGE];
    int fd = -1;
    assert_true(next_message(sock, msg, sizeof msg, &fd) > 0);
    if (fd >= 0) close(fd);
    int status = wait_exit(pid);
    close(sock);
    if (strncmp(msg, "error unshare", 13) == 0) skip();
    assert_int_equal(status, 127); /* the driver's exec failed: browserd says "could not be run" */
}

static void test_broker_refuses_a_bad_command_line(void **state) {
    (void)state;
    char *no_parent[] = {"browserd", DRIVER_NETNS_COMMAND, "--", "/bin/true", NULL};
    assert_int_equal(driver_netns_main(4, no_parent), 2);
    char *no_driver[] = {"browserd", DRIVER_NETNS_COMMAND, "--parent", "1", "--", NULL};
    assert_int_equal(driver_netns_main(5, no_driver), 2);
    char *unknown[] = {"browserd", DRIVER_NETNS_COMMAND, "--what", "--", "/bin/true", NULL};
    assert_int_equal(driver_netns_main(5, unknown), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_hands_over_sockets_of_its_own_namespace),
        cmocka_unit_test(test_broker_reports_a_driver_that_cannot_run),
        cmocka_unit_test(test_broker_refuses_a_bad_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
