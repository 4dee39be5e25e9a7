/* The network namespace of one chromedriver: browserd's own binary in the hidden mode
 * `__webdriver-netns` (the "driver broker"), started by the WebDriver front (webdriver.c).
 *
 * Why: chromedriver listens on a TCP port and attaches to the browser over a TCP address, and
 * a port on the machine's loopback is open to every local user. In a network namespace of its
 * own the driver's port and the browser address it dials exist for nobody else: the broker
 * unshares the namespace (CLONE_NEWNET as root, else with a user namespace of its own), brings
 * its loopback up, listens there for the driver's CDP connection, and starts chromedriver
 * inside. browserd reaches into the namespace only through descriptors the broker hands over.
 *
 * Command line:
 *   browserd __webdriver-netns --parent PID [--user UID GID] -- CHROMEDRIVER
 *     --parent  browserd's pid (as for the browser supervisor: if the broker's parent is already
 *               another process once its parent-death signal is armed, browserd died; exit)
 *     --user    the driver runs as UID:GID (browserd runs as root with --browser-user)
 * Descriptors: 0, 1, 2 /dev/null; 3 a SOCK_SEQPACKET socket to browserd. Messages on it:
 *   broker -> browserd, once at the start: "ok" with the listening socket of the CDP address
 *             (DRIVER_NETNS_CDP_PORT) attached, or "error STEP: TEXT"
 *   browserd -> broker: "connect"; the answer: "ok" with a socket connected to the driver's
 *             WebDriver port (DRIVER_NETNS_DRIVER_PORT) attached, or "error connect: TEXT"
 *             (ECONNREFUSED while the driver is still starting: ask again)
 * The broker ends when browserd closes its end (EOF), when browserd dies (parent-death signal),
 * or when the driver exits; it kills the driver and waits for it first. Exit status: the
 * driver's exit code, 1 when setting up failed, 2 on usage. */
#ifndef BROWSERD_WEBDRIVER_DRIVER_NETNS_H
#define BROWSERD_WEBDRIVER_DRIVER_NETNS_H

#include <stddef.h>

#define DRIVER_NETNS_COMMAND "__webdriver-netns"
#define DRIVER_NETNS_SOCKET_FD 3
/* Inside the namespace nothing else listens: fixed ports. */
#define DRIVER_NETNS_DRIVER_PORT 9515
#define DRIVER_NETNS_CDP_PORT 9222
#define DRIVER_NETNS_MAX_MESSAGE 256

/* The hidden mode's main (argv[1] is DRIVER_NETNS_COMMAND). Returns the exit status. */
int driver_netns_main(int argc, char **argv);

/* browserd's side: receives one message on fd (non-blocking): its length (text NUL-terminated
 * in buf), with *fd_out the attached descriptor (close-on-exec) or -1; -EAGAIN when none is
 * there yet, 0 at EOF, another negative errno on error. */
long driver_netns_receive(int fd, char *buf, size_t cap, int *fd_out);

#endif
