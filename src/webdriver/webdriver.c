/* The WebDriver endpoint: see webdriver.h.
 *
 * A session's steps: the zone check (worker thread) -> the broker started (its own network
 * namespace, chromedriver inside) -> its first message: the listening socket of the attach
 * address, served here (cdp_handle) -> a connection to the driver asked of the broker ->
 * New Session sent to the driver, which fetches /json/version and opens its WebSocket: that
 * upgrade goes to the gateway as an already checked client, and the gateway's session begins
 * (session_started) -> the driver answers, and the client gets the gateway session's id.
 * Commands then go one at a time over the link (the driver serialises them anyway).
 *
 * Lifetime of a wd_session: a net_lifetime_t counting its handles (broker process, socket poll,
 * three timers), the attach server until it has stopped, the gateway's session from started to
 * ended, and one for being open (dropped by session_finish). Every client request it holds is
 * answered before that. */
#include "webdriver/webdriver.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cdp/credentials.h"
#include "core/log.h"
#include "core/uuid.h"
#include "http/http_server.h"
#include "net/failure_limit.h"
#include "net/lifetime.h"
#include "webdriver/driver_link.h"
#include "webdriver/driver_netns.h"
#include "webdriver/webdriver_proto.h"

#define CONNECT_RETRY_MS 25
#define VERSION_POLL_MS 50
#define VERSION_WAIT_MS 15000
#define RECENTLY_ENDED 32
#define MAX_BODY (64u << 20) /* file uploads and scripts with large arguments */
#define JSON_HEADERS "Content-Type: application/json; charset=utf-8\r\nCache-Control: no-cache\r\n"

typedef struct pending {
    struct pending *next;
    http_conn_t *conn;
    const char *method;
    char *path;       /* with the driver's session id */
    const char *body; /* the request's (valid until it is answered) */
    size_t len;
    bool ends_session; /* DELETE /session/{id} */
} pending_t;

typedef struct wd_session wd_session_t;
struct wd_session {
    net_lifetime_t life; /* first: see net/lifetime.h */
    webdriver_t *wd;
    wd_session_t *next;
    bool ended;
    char end_reason[320];
    zone_credentials_t cred;
    char upstream[1024];
    char live_host[300]; /* the CDP listener as the client reaches browserd (live view URLs) */
    char id[UUID_TEXT_LEN + 1]; /* the browser session's, once it began */
    bool attach_asked, browser_started, browser_ended;
    char driver_id[128];
    bool driver_ready; /* New Session answered */
    uv_process_t broker;
    bool broker_running;
    int broker_status;
    int sock;
    uv_poll_t sock_poll;
    uv_timer_t deadline, retry;
    uv_timer_t version_timer;        /* while the driver's /json/version waits for the version */
    http_conn_t *version_conn;       /* that request, held */
    const http_request_t *version_req;
    uint64_t version_since;
    http_server_t *attach; /* in the namespace: the address the driver attaches to */
    driver_link_t *link;
    bool connecting;
    unsigned link_failures; /* in a row */
    http_conn_t *creator;   /* the New Session request, until answered */
    char *driver_request;   /* its body as the driver gets it */
    pending_t *head, *tail;
    bool in_flight;
};

struct webdriver {
    webdriver_config_t cfg;
    char driver_path[512];
    http_server_t *http;
    wd_session_t *sessions;
    struct {
        char id[UUID_TEXT_LEN + 1];
        char why[320];
    } ended[RECENTLY_ENDED];
    unsigned ended_next;
    bool stopping, http_stopped;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
};

static void session_finish(wd_session_t *s, const char *why);
static void answer_held_version(wd_session_t *s);
static void pump(wd_session_t *s);

/* ---------------------------------------------------------------- answers ---- */

static void respond_error(http_conn_t *conn, int status, const char *error, const char *message) {
    size_t len = 0;
    char *body = webdriver_error_body(error, message, &len);
    http_respond(conn, body ? status : 500, JSON_HEADERS, body, body ? len : 0, !body);
}

static void respond_not_created(http_conn_t *conn, const char *message) {
    respond_error(conn, 500, "session not created", message);
}

/* A command of a session that has ended: 404 with why. */
static void respond_ended(http_conn_t *conn, const char *why) {
    char msg[400];
    snprintf(msg, sizeof msg, "the session has ended: %s", why);
    respond_error(conn, 404, "invalid session id", msg);
}

/* Why a session id is not (or no longer) one of a running session's. */
static void respond_no_session(webdriver_t *wd, http_conn_t *conn, const char *id, size_t id_len) {
    for (unsigned i = 0; i < RECENTLY_ENDED; i++)
        if (wd->ended[i].id[0] && strlen(wd->ended[i].id) == id_len && memcmp(wd->ended[i].id, id, id_len) == 0) {
            respond_ended(conn, wd->ended[i].why);
            return;
        }
    respond_error(conn, 404, "invalid session id", "no running WebDriver session has this id");
}

/* ---------------------------------------------------------------- a session's end ---- */

static void session_release(net_lifetime_t *life) {
    wd_session_t *s = (wd_session_t *)life;
    webdriver_t *wd = s->wd;
    for (wd_session_t **p = &wd->sessions; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    free(s->driver_request);
    explicit_bzero(s, sizeof *s); /* the password, the upstream's credentials */
    free(s);
    if (wd->stopping && wd->http_stopped && !wd->sessions && wd->on_stopped) {
        void (*done)(void *) = wd->on_stopped;
        wd->on_stopped = NULL;
        done(wd->stopped_arg);
    }
}

/* The socket is closed only now: libuv still watches its number until the poll is closed. The
 * broker then sees EOF: it kills the driver and exits. */
static void on_sock_poll_closed(uv_handle_t *h) {
    wd_session_t *s = h->data;
    close(s->sock);
    s->sock = -1;
    net_lifetime_unref(&s->life);
}

static void on_attach_stopped(void *arg) { net_lifetime_unref(&((wd_session_t *)arg)->life); }

/* Answers every command still queued (none is in flight: the link is closed first). */
static void fail_pending(wd_session_t *s) {
    while (s->head) {
        pending_t *p = s->head;
        s->head = p->next;
        respond_ended(p->conn, s->end_reason);
        free(p->path);
        free(p);
    }
    s->tail = NULL;
}

/* The WebDriver session is over (deleted, its browser session ended, the driver gone, browserd
 * stopping): every request it holds is answered, the driver goes (so the browser session, if
 * it still runs, ends as closed by its client), and the memory once the handles are closed. */
static void session_finish(wd_session_t *s, const char *why) {
    if (s->ended) return;
    s->ended = true;
    snprintf(s->end_reason, sizeof s->end_reason, "%.300s", why);
    webdriver_t *wd = s->wd;
    if (s->browser_started) {
        unsigned i = wd->ended_next++ % RECENTLY_ENDED;
        snprintf(wd->ended[i].id, sizeof wd->ended[i].id, "%s", s->id);
        snprintf(wd->ended[i].why, sizeof wd->ended[i].why, "%.300s", why);
    }
    log_event(LOG_INFO, "webdriver", "session_end", "session=%s customer=%s zone=%s reason=\"%s\"",
              s->id[0] ? s->id : "-", s->cred.customer_id, s->cred.zone, why);
    if (s->creator) {
        char msg[400];
        snprintf(msg, sizeof msg, "the browser session could not start: %s", why);
        respond_not_created(s->creator, msg);
        s->creator = NULL;
    }
    answer_held_version(s);
    driver_link_t *link = s->link;
    s->link = NULL;
    driver_link_close(link); /* answers the request in flight (-ECANCELED) */
    s->in_flight = false;
    fail_pending(s);
    if (s->attach) {
        http_server_stop(s->attach, on_attach_stopped, s);
        s->attach = NULL;
    } else {
        net_lifetime_unref(&s->life); /* the attach server's share: it never started */
    }
    if (s->sock >= 0) {
        uv_poll_stop(&s->sock_poll);
        uv_close((uv_handle_t *)&s->sock_poll, on_sock_poll_closed);
    }
    net_lifetime_close((uv_handle_t *)&s->deadline);
    net_lifetime_close((uv_handle_t *)&s->retry);
    net_lifetime_close((uv_handle_t *)&s->version_timer);
    if (s->broker_running) uv_process_kill(&s->broker, SIGTERM);
    net_lifetime_unref(&s->life); /* open */
}

/* ---------------------------------------------------------------- the gateway's session ---- */

static void session_started(void *arg, const char *session_id) {
    wd_session_t *s = arg;
    net_lifetime_ref(&s->life); /* until session_ended */
    s->browser_started = true;
    snprintf(s->id, sizeof s->id, "%s", session_id);
}

static void session_ended(void *arg, const char *error_code) {
    wd_session_t *s = arg;
    s->browser_ended = true;
    char why[96];
    snprintf(why, sizeof why, "the browser session ended (%s)", error_code ? error_code : "finished");
    session_finish(s, why);
    net_lifetime_unref(&s->life);
}

static void answer_held_version(wd_session_t *s) {
    if (!s->version_conn) return;
    uv_timer_stop(&s->version_timer);
    gateway_respond_version(s->wd->cfg.gateway, s->version_conn, s->version_req);
    s->version_conn = NULL;
}

static void on_version_timer(uv_timer_t *t) {
    wd_session_t *s = t->data;
    if (gateway_browser_version_known(s->wd->cfg.gateway) || uv_now(s->wd->cfg.loop) - s->version_since >= VERSION_WAIT_MS)
        answer_held_version(s); /* past the wait: answered as it is (the driver then says why) */
}

/* The driver's side, inside the namespace: /json/version, then its one WebSocket. */
static void attach_handle(void *ctx, http_conn_t *conn, const http_request_t *req) {
    wd_session_t *s = ctx;
    gateway_t *gw = s->wd->cfg.gateway;
    if (!req->upgrade && req->method == HTTP_M_GET && strncmp(req->path, "/json/version", 13) == 0) {
        if (gateway_browser_version_known(gw) || s->version_conn || s->ended) {
            gateway_respond_version(gw, conn, req);
        } else { /* chromedriver refuses a browser without a version: wait for it */
            s->version_conn = conn;
            s->version_req = req;
            s->version_since = uv_now(s->wd->cfg.loop);
            uv_timer_start(&s->version_timer, on_version_timer, VERSION_POLL_MS, VERSION_POLL_MS);
        }
    } else if (!req->upgrade && req->method == HTTP_M_GET && (strcmp(req->path, "/json/list") == 0 || strcmp(req->path, "/json") == 0)) {
        /* The driver waits here until a page is listed, then finds its pages over the browser's
         * WebSocket (the Target domain): the browser is the session's, not known before. */
        static const char page[] = "[{\"description\":\"\",\"id\":\"browserd\",\"title\":\"\",\"type\":\"page\","
                                   "\"url\":\"about:blank\"}]";
        char *list = strdup(page);
        http_respond(conn, list ? 200 : 500, NULL, list, list ? sizeof page - 1 : 0, !list);
    } else if (req->upgrade && !s->attach_asked && !s->ended) {
        s->attach_asked = true;
        uv_timer_stop(&s->deadline); /* the queue's own timeout rules from here */
        gateway_session_hooks_t hooks = {.started = session_started, .ended = session_ended, .arg = s};
        gateway_admit_checked(gw, conn, req, &s->cred, s->upstream, s->live_host, &hooks);
    } else {
        http_respond_error(conn, req->upgrade ? 409 : 404, NULL, "one browser session per driver", true);
    }
}

/* ---------------------------------------------------------------- the driver's link ---- */

static void ask_connect(wd_session_t *s) {
    if (s->connecting || s->ended) return;
    if (s->link) {
        driver_link_close(s->link);
        s->link = NULL;
    }
    if (send(s->sock, "connect", 7, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        session_finish(s, "the driver's broker is gone");
        return;
    }
    s->connecting = true;
}

static void on_retry(uv_timer_t *t) { ask_connect(t->data); }

static void on_new_session_answer(void *arg, int status, const char *content_type, char *body, size_t len) {
    wd_session_t *s = arg;
    (void)content_type;
    s->in_flight = false;
    if (s->ended || !s->creator) {
        free(body);
        return;
    }
    char *out = NULL;
    size_t out_len = 0;
    if (status == 200 && s->browser_started &&
        webdriver_new_session_answer(body, len, s->id, &out, &out_len, s->driver_id, sizeof s->driver_id) == 0) {
        free(body);
        s->driver_ready = true;
        http_respond(s->creator, 200, JSON_HEADERS, out, out_len, false);
        s->creator = NULL;
        log_event(LOG_INFO, "webdriver", "session_start", "session=%s customer=%s zone=%s", s->id, s->cred.customer_id,
                  s->cred.zone);
        pump(s);
        return;
    }
    char why[300];
    if (status < 0) snprintf(why, sizeof why, "the driver did not answer (%s)", strerror(-status));
    else snprintf(why, sizeof why, "the driver refused (HTTP %d): %.200s", status, body ? body : "");
    free(body);
    session_finish(s, why);
}

static void send_new_session(wd_session_t *s) {
    if (driver_link_request(s->link, "POST", "/session", s->driver_request, strlen(s->driver_request),
                            on_new_session_answer, s) < 0) {
        ask_connect(s);
        return;
    }
    s->in_flight = true;
}

static void on_command_answer(void *arg, int status, const char *content_type, char *body, size_t len) {
    wd_session_t *s = arg;
    s->in_flight = false;
    pending_t *p = s->head;
    if (!p) {
        free(body);
        return;
    }
    s->head = p->next;
    if (!s->head) s->tail = NULL;
    if (status == -ECANCELED && s->ended && p->ends_session) {
        /* The driver lets go of the browser before it answers a Delete Session, and the
         * browser session ends with that: the client's request is done. */
        char *null_value = strdup("{\"value\":null}");
        http_respond(p->conn, null_value ? 200 : 500, JSON_HEADERS, null_value, null_value ? 14 : 0, !null_value);
    } else if (status == -ECANCELED && s->ended) {
        respond_ended(p->conn, s->end_reason);
    } else if (status < 0) {
        s->link_failures++;
        respond_error(p->conn, 500, "unknown error",
                      status == -EMSGSIZE ? "the driver's answer is larger than browserd passes on (256 MiB)"
                                          : "the connection to the driver broke during the command");
    } else {
        s->link_failures = 0;
        char headers[256];
        snprintf(headers, sizeof headers, "Content-Type: %s\r\nCache-Control: no-cache\r\n",
                 content_type[0] ? content_type : "application/json; charset=utf-8");
        http_respond(p->conn, status, headers, body, len, false);
        body = NULL;
        if (p->ends_session && status == 200) session_finish(s, "deleted by the client");
    }
    free(body);
    free(p->path);
    free(p);
    if (s->link_failures >= 3) session_finish(s, "the connection to the driver keeps breaking");
    pump(s);
}

static void pump(wd_session_t *s) {
    if (s->in_flight || s->ended || !s->driver_ready || !s->head) return;
    if (!s->link || !driver_link_usable(s->link)) {
        ask_connect(s);
        return;
    }
    pending_t *p = s->head;
    if (driver_link_request(s->link, p->method, p->path, p->body, p->len, on_command_answer, s) < 0) {
        ask_connect(s);
        return;
    }
    s->in_flight = true;
}

/* ---------------------------------------------------------------- the broker ---- */

static void on_sock(uv_poll_t *h, int status, int events) {
    wd_session_t *s = h->data;
    (void)events;
    if (s->ended) return;
    if (status < 0) {
        session_finish(s, "the driver's broker is gone");
        return;
    }
    for (;;) {
        char msg[DRIVER_NETNS_MAX_MESSAGE];
        int fd = -1;
        long n = driver_netns_receive(s->sock, msg, sizeof msg, &fd);
        if (n == -EAGAIN) return;
        if (n <= 0) {
            session_finish(s, "the driver's broker is gone");
            return;
        }
        bool ok = strcmp(msg, "ok") == 0 && fd >= 0;
        if (!ok && fd >= 0) close(fd);
        if (!s->attach) { /* the first message: the attach address, or why there is none */
            if (!ok) {
                char why[DRIVER_NETNS_MAX_MESSAGE + 64];
                snprintf(why, sizeof why, "no network namespace for the driver (%s)", msg);
                session_finish(s, why);
                return;
            }
            http_server_config_t hc;
            http_server_config_defaults(&hc);
            hc.host = NULL, hc.port = 0; /* the defaults leave them to the caller */
            hc.adopt_listener = true;
            hc.listener_fd = fd;
            hc.name = "webdriver-attach";
            int rc = http_server_start(s->wd->cfg.loop, &hc, attach_handle, s, &s->attach);
            if (rc < 0) {
                char why[128];
                snprintf(why, sizeof why, "the driver's attach address could not be served (%s)", uv_strerror(rc));
                session_finish(s, why);
                return;
            }
            ask_connect(s);
            continue;
        }
        s->connecting = false;
        if (!ok) { /* the driver is not listening yet */
            if (s->driver_ready) session_finish(s, "the driver stopped listening");
            else uv_timer_start(&s->retry, on_retry, CONNECT_RETRY_MS, 0);
            if (s->ended) return;
            continue;
        }
        if (driver_link_open(s->wd->cfg.loop, fd, &s->link) < 0) {
            session_finish(s, "out of memory");
            return;
        }
        if (!s->driver_ready && !s->in_flight) send_new_session(s);
        else pump(s);
    }
}

static void on_broker_exit(uv_process_t *p, int64_t status, int signal) {
    wd_session_t *s = p->data;
    s->broker_running = false;
    s->broker_status = (int)status;
    char why[128];
    if (status == 127) snprintf(why, sizeof why, "the driver could not be run (%.80s)", s->wd->driver_path);
    else if (signal) snprintf(why, sizeof why, "the driver ended (signal %d)", signal);
    else snprintf(why, sizeof why, "the driver exited (status %lld)", (long long)status);
    session_finish(s, why);
    net_lifetime_close((uv_handle_t *)p);
}

static void on_deadline(uv_timer_t *t) {
    wd_session_t *s = t->data;
    if (!s->attach_asked) session_finish(s, "the driver did not start and attach in time");
}

/* A driver in a namespace of its own for an admitted client (its New Session waits). */
static void session_begin(webdriver_t *wd, http_conn_t *conn, const zone_credentials_t *cred, const char *upstream,
                          const char *live_host, char *driver_request) {
    wd_session_t *s = calloc(1, sizeof *s);
    int pair[2] = {-1, -1};
    if (!s || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        free(s);
        free(driver_request);
        respond_not_created(conn, "out of resources (memory or descriptors)");
        return;
    }
    s->wd = wd;
    s->cred = *cred;
    snprintf(s->upstream, sizeof s->upstream, "%s", upstream);
    snprintf(s->live_host, sizeof s->live_host, "%s", live_host);
    s->driver_request = driver_request;
    s->creator = conn;
    s->sock = pair[0];
    /* open, the attach server's share, the three timers (the poll and the process add theirs) */
    net_lifetime_init(&s->life, 5, session_release);
    s->next = wd->sessions;
    wd->sessions = s;
    uv_timer_init(wd->cfg.loop, &s->deadline);
    uv_timer_init(wd->cfg.loop, &s->retry);
    uv_timer_init(wd->cfg.loop, &s->version_timer);
    s->deadline.data = s->retry.data = s->version_timer.data = s;
    uv_timer_start(&s->deadline, on_deadline, wd->cfg.start_timeout_ms, 0);

    char parent[24], uid[24], gid[24];
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    snprintf(uid, sizeof uid, "%u", (unsigned)wd->cfg.driver_uid);
    snprintf(gid, sizeof gid, "%u", (unsigned)wd->cfg.driver_gid);
    char port_arg[32];
    snprintf(port_arg, sizeof port_arg, "--port=%d", DRIVER_NETNS_DRIVER_PORT);
    char *args[16];
    int n = 0;
    args[n++] = "/proc/self/exe";
    args[n++] = DRIVER_NETNS_COMMAND;
    args[n++] = "--parent";
    args[n++] = parent;
    if (wd->cfg.driver_run_as) args[n++] = "--user", args[n++] = uid, args[n++] = gid;
    args[n++] = "--";
    args[n++] = wd->driver_path;
    args[n++] = port_arg;
    args[n++] = "--silent";
    args[n] = NULL;
    uv_stdio_container_t stdio[4] = {{.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = pair[1]}};
    uv_process_options_t opt = {.file = args[0], .args = args, .exit_cb = on_broker_exit, .stdio_count = 4,
                                .stdio = stdio};
    s->broker.data = s;
    int rc = uv_spawn(wd->cfg.loop, &s->broker, &opt);
    close(pair[1]);
    net_lifetime_ref(&s->life); /* the process handle: closed in on_broker_exit, or now */
    if (rc < 0) {
        net_lifetime_close((uv_handle_t *)&s->broker);
        close(s->sock);
        s->sock = -1;
        session_finish(s, "the driver's broker could not be started");
        return;
    }
    s->broker_running = true;
    net_lifetime_ref(&s->life); /* the poll handle */
    uv_poll_init(wd->cfg.loop, &s->sock_poll, s->sock);
    s->sock_poll.data = s;
    uv_poll_start(&s->sock_poll, UV_READABLE, on_sock);
}

/* ---------------------------------------------------------------- New Session ---- */

/* A New Session whose zone is being checked (gateway_check_zone). */
typedef struct {
    webdriver_t *wd;
    http_conn_t *conn;
    zone_credentials_t cred;
    char live_host[300];
    char *driver_request;
} checking_t;

static void checking_free(checking_t *c) {
    free(c->driver_request);
    explicit_bzero(c, sizeof *c); /* the password */
    free(c);
}

static void on_zone_checked(void *arg, int rc, const char *upstream) {
    checking_t *c = arg;
    if (rc == -ECANCELED || c->wd->stopping) {
        respond_not_created(c->conn, "browserd is shutting down");
    } else if (rc == -EACCES) {
        respond_not_created(c->conn, "Invalid credentials: unknown customer or zone, or a wrong password");
    } else if (rc < 0) {
        respond_not_created(c->conn, "Credentials could not be checked");
    } else {
        session_begin(c->wd, c->conn, &c->cred, upstream, c->live_host, c->driver_request);
        c->driver_request = NULL;
    }
    checking_free(c);
}

/* The CDP listener at the host the client reached the WebDriver endpoint by (its Host header's
 * host, when it is a plain name or address), for the live view's URLs. */
static void live_host_of(const webdriver_t *wd, const http_request_t *req, char *out, size_t cap) {
    const http_header_t *h = http_request_header(req, "host");
    const gateway_config_t *gc = gateway_config(wd->cfg.gateway);
    size_t n = h ? h->value_len : 0;
    if (n && h->value[0] == '[') { /* [v6]:port */
        const char *close = memchr(h->value, ']', n);
        n = close ? (size_t)(close - h->value) + 1 : 0;
    } else if (n) {
        const char *colon = memchr(h->value, ':', n);
        if (colon) n = (size_t)(colon - h->value);
    }
    bool plain = n > 0 && n < 256;
    for (size_t i = 0; plain && i < n; i++)
        plain = h->value[i] && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", h->value[i]) != NULL;
    if (plain) snprintf(out, cap, "%.*s:%d", (int)n, h->value, gateway_port(wd->cfg.gateway));
    else snprintf(out, cap, "%s:%d", gc->host, gateway_port(wd->cfg.gateway));
}

static void new_session(webdriver_t *wd, http_conn_t *conn, const http_request_t *req) {
    gateway_status_t st;
    gateway_status(wd->cfg.gateway, &st);
    if (wd->stopping || st.draining) {
        respond_not_created(conn, wd->stopping ? "browserd is shutting down" : "browserd is draining: it takes no new sessions");
        return;
    }
    const gateway_config_t *gc = gateway_config(wd->cfg.gateway);
    struct sockaddr_storage peer;
    bool have_peer = gc->auth_limit && http_conn_peer(conn, &peer) == 0;
    if (have_peer && failure_limit_wait(gc->auth_limit, (const struct sockaddr *)&peer, uv_now(wd->cfg.loop))) {
        respond_not_created(conn, FAILURE_LIMIT_MESSAGE);
        return;
    }
    const http_header_t *auth = http_request_header(req, "authorization");
    checking_t *j = calloc(1, sizeof *j);
    if (!j) {
        respond_not_created(conn, "out of memory");
        return;
    }
    credentials_result_t cr = auth ? credentials_from_basic(auth->value, auth->value_len, &j->cred) : CREDENTIALS_MISSING;
    char err[256];
    if (cr != CREDENTIALS_OK) {
        checking_free(j);
        respond_not_created(conn, cr == CREDENTIALS_MISSING
                                      ? "Credentials are missing: use http://brd-customer-<ID>-zone-<ZONE>:<PASSWORD>@host:port"
                                      : "Invalid credentials: expected brd-customer-<ID>-zone-<ZONE>:<PASSWORD>");
        return;
    }
    char address[32];
    snprintf(address, sizeof address, "127.0.0.1:%d", DRIVER_NETNS_CDP_PORT);
    if (webdriver_new_session_request(req->body, req->body_len, address, &j->driver_request, err, sizeof err) < 0) {
        checking_free(j);
        respond_error(conn, 400, "invalid argument", err);
        return;
    }
    if (access(wd->driver_path, X_OK) != 0) {
        snprintf(err, sizeof err, "chromedriver is not installed at %.120s (Debian: apt install chromium-driver; or --webdriver-driver PATH)",
                 wd->driver_path);
        checking_free(j);
        respond_not_created(conn, err);
        return;
    }
    live_host_of(wd, req, j->live_host, sizeof j->live_host);
    j->wd = wd;
    j->conn = conn;
    if (gateway_check_zone(wd->cfg.gateway, &j->cred, have_peer ? &peer : NULL, on_zone_checked, j) < 0) {
        checking_free(j);
        respond_not_created(conn, "Service unavailable");
    }
}

/* ---------------------------------------------------------------- commands ---- */

/* The request carries the credentials the session was made with (a session id alone is not
 * enough to drive someone's browser). */
static bool same_owner(const wd_session_t *s, const http_request_t *req) {
    const http_header_t *auth = http_request_header(req, "authorization");
    zone_credentials_t c;
    if (!auth || credentials_from_basic(auth->value, auth->value_len, &c) != CREDENTIALS_OK) return false;
    size_t a = strlen(c.password), b = strlen(s->cred.password);
    bool same = strcmp(c.customer_id, s->cred.customer_id) == 0 && strcmp(c.zone, s->cred.zone) == 0 && a == b &&
                CRYPTO_memcmp(c.password, s->cred.password, a) == 0;
    explicit_bzero(&c, sizeof c);
    return same;
}

static void command(webdriver_t *wd, http_conn_t *conn, const http_request_t *req, const char *id, size_t id_len,
                    const char *rest) {
    wd_session_t *s = wd->sessions;
    while (s && !(s->driver_ready && !s->ended && strlen(s->id) == id_len && memcmp(s->id, id, id_len) == 0))
        s = s->next;
    if (!s || !same_owner(s, req)) {
        respond_no_session(wd, conn, id, id_len);
        return;
    }
    pending_t *p = calloc(1, sizeof *p);
    size_t plen = strlen(s->driver_id) + strlen(rest) + 16;
    char *path = p ? malloc(plen) : NULL;
    if (!path) {
        free(p);
        respond_error(conn, 500, "unknown error", "out of memory");
        return;
    }
    snprintf(path, plen, "/session/%s%s", s->driver_id, rest);
    p->conn = conn;
    p->method = req->method_name;
    p->path = path;
    p->body = req->body;
    p->len = req->body_len;
    p->ends_session = req->method == HTTP_M_DELETE && !*rest;
    if (s->tail) s->tail->next = p;
    else s->head = p;
    s->tail = p;
    pump(s);
}

static void respond_status(webdriver_t *wd, http_conn_t *conn) {
    gateway_status_t st;
    gateway_status(wd->cfg.gateway, &st);
    bool installed = access(wd->driver_path, X_OK) == 0;
    bool ready = installed && !wd->stopping && !st.draining && st.running < st.max_sessions;
    char body[300];
    int n = snprintf(body, sizeof body, "{\"value\":{\"ready\":%s,\"message\":\"%s\"}}", ready ? "true" : "false",
                     !installed    ? "chromedriver is not installed"
                     : wd->stopping || st.draining ? "browserd is not taking new sessions"
                     : ready       ? "browserd is ready for new sessions"
                                   : "every browser slot is taken: new sessions wait in the queue");
    char *copy = strdup(body);
    http_respond(conn, copy ? 200 : 500, JSON_HEADERS, copy, copy ? (size_t)n : 0, !copy);
}

static void webdriver_handle(void *ctx, http_conn_t *conn, const http_request_t *req) {
    webdriver_t *wd = ctx;
    const char *id, *rest;
    size_t id_len;
    if (req->method == HTTP_M_GET && strcmp(req->path, "/status") == 0) respond_status(wd, conn);
    else if (req->method == HTTP_M_POST && strcmp(req->path, "/session") == 0) new_session(wd, conn, req);
    else if (webdriver_session_path(req->path, &id, &id_len, &rest)) command(wd, conn, req, id, id_len, rest);
    else respond_error(conn, 404, "unknown command", "not a WebDriver command browserd knows");
}

/* ---------------------------------------------------------------- the endpoint ---- */

int webdriver_start(const webdriver_config_t *cfg, webdriver_t **out) {
    *out = NULL;
    webdriver_t *wd = calloc(1, sizeof *wd);
    if (!wd) return UV_ENOMEM;
    wd->cfg = *cfg;
    if (!wd->cfg.start_timeout_ms) wd->cfg.start_timeout_ms = 20000;
    snprintf(wd->driver_path, sizeof wd->driver_path, "%s", cfg->driver_path ? cfg->driver_path : WEBDRIVER_DEFAULT_DRIVER);
    wd->cfg.driver_path = wd->driver_path;
    http_server_config_t hc;
    http_server_config_defaults(&hc);
    hc.host = cfg->host;
    hc.port = cfg->port;
    hc.name = "webdriver";
    hc.max_body_bytes = MAX_BODY;
    hc.request_timeout_ms = 60000; /* a large upload on a slow link */
    int rc = http_server_start(cfg->loop, &hc, webdriver_handle, wd, &wd->http);
    if (rc < 0) {
        free(wd);
        return rc;
    }
    *out = wd;
    return 0;
}

int webdriver_port(const webdriver_t *wd) { return http_server_port(wd->http); }

static void on_http_stopped(void *arg) {
    webdriver_t *wd = arg;
    wd->http_stopped = true;
    wd->http = NULL;
    if (!wd->sessions && wd->on_stopped) {
        void (*done)(void *) = wd->on_stopped;
        wd->on_stopped = NULL;
        done(wd->stopped_arg);
    }
}

void webdriver_stop(webdriver_t *wd, void (*done)(void *arg), void *arg) {
    if (wd->stopping) return;
    wd->stopping = true;
    wd->on_stopped = done;
    wd->stopped_arg = arg;
    for (wd_session_t *s = wd->sessions, *next; s; s = next) {
        next = s->next;
        session_finish(s, "browserd is stopping");
    }
    http_server_stop(wd->http, on_http_stopped, wd);
}

void webdriver_free(webdriver_t *wd) { free(wd); }
