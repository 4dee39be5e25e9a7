/* The driver broker: see driver_netns.h. Single-threaded; it waits on its socket and on the
 * driver, nothing else. */
#include "webdriver/driver_netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grp.h>

static int send_message(int sock, const char *text, int fd) {
    struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        m.msg_control = control.space;
        m.msg_controllen = sizeof control.space;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do n = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

long driver_netns_receive(int fd, char *buf, size_t cap, int *fd_out) {
    *fd_out = -1;
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                       .msg_controllen = sizeof control.space};
    ssize_t n;
    do n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    buf[n] = '\0';
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int)))
            memcpy(fd_out, CMSG_DATA(c), sizeof *fd_out);
    return n;
}

/* ---------------------------------------------------------------- the broker ---- */

static int fail(int sock, const char *step, int err) {
    char msg[DRIVER_NETNS_MAX_MESSAGE];
    snprintf(msg, sizeof msg, "error %s: %s", step, strerror(err));
    send_message(sock, msg, -1);
    return 1;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int err = n < 0 ? errno : 0;
    close(fd);
    return n < 0 ? -err : 0;
}

/* A network namespace of our own: directly when we may (root), else inside a user namespace of
 * our own in which we are the only user (our uid and gid mapped to themselves). */
static int private_network(void) {
    if (unshare(CLONE_NEWNET) == 0) return 0;
    if (errno != EPERM) return -errno;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) return -errno;
    char map[64];
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    int rc = write_file("/proc/self/uid_map", map);
    if (rc == 0) rc = write_file("/proc/self/setgroups", "deny\n");
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if (rc == 0) rc = write_file("/proc/self/gid_map", map);
    return rc;
}

static int loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int err = rc < 0 ? errno : 0;
    close(s);
    return -err;
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int listen_cdp(void) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct sockaddr_in a = loopback(DRIVER_NETNS_CDP_PORT);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
        int err = errno;
        close(s);
        return -err;
    }
    return s;
}

static void answer_connect(int sock) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = loopback(DRIVER_NETNS_DRIVER_PORT);
    int rc = s < 0 ? -errno : 0;
    if (rc == 0 && connect(s, (struct sockaddr *)&a, sizeof a) < 0) rc = -errno; /* loopback: at once */
    if (rc == 0) {
        send_message(sock, "ok", s);
    } else {
        char msg[DRIVER_NETNS_MAX_MESSAGE];
        snprintf(msg, sizeof msg, "error connect: %s", strerror(-rc));
        send_message(sock, msg, -1);
    }
    if (s >= 0) close(s);
}

static int finish(pid_t driver) {
    int st = 0;
    kill(driver, SIGKILL); /* attached to a browser it does not own: nothing of its to save */
    while (waitpid(driver, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 0;
}

int driver_netns_main(int argc, char **argv) {
    long parent = -1;
    long uid = -1, gid = -1;
    int i = 2;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--parent") == 0 && i + 1 < argc) parent = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--user") == 0 && i + 2 < argc) {
            uid = strtol(argv[++i], NULL, 10);
            gid = strtol(argv[++i], NULL, 10);
        } else return 2;
    }
    if (parent <= 0 || i + 1 >= argc) return 2;
    char **driver_argv = argv + i + 1;
    int sock = DRIVER_NETNS_SOCKET_FD;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != (pid_t)parent) return 1;
    int rc = private_network();
    if (rc < 0) return fail(sock, "unshare", -rc);
    if ((rc = loopback_up()) < 0) return fail(sock, "loopback", -rc);
    int cdp = listen_cdp();
    if (cdp < 0) return fail(sock, "listen", -cdp);
    pid_t driver = fork();
    if (driver < 0) return fail(sock, "fork", errno);
    if (driver == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(cdp);
        close(sock);
        if (uid >= 0 && (setgroups(0, NULL) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0)) _exit(126);
        execv(driver_argv[0], driver_argv);
        _exit(127);
    }
    rc = send_message(sock, "ok", cdp);
    close(cdp);
    if (rc < 0) return finish(driver);
    for (;;) {
        int st;
        pid_t w = waitpid(driver, &st, WNOHANG);
        if (w == driver) return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
        struct pollfd p = {.fd = sock, .events = POLLIN};
        int n = poll(&p, 1, 200); /* the driver's exit is noticed within this */
        if (n < 0 && errno != EINTR) return finish(driver);
        if (n <= 0) continue;
        char msg[DRIVER_NETNS_MAX_MESSAGE];
        ssize_t len = recv(sock, msg, sizeof msg - 1, 0);
        if (len <= 0) return finish(driver); /* browserd closed its end, or is gone */
        msg[len] = '\0';
        if (strcmp(msg, "connect") == 0) answer_connect(sock);
    }
}
