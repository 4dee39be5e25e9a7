/* cdp_bench: what browserd's CDP gateway costs a client, each figure against a direct
 * connection to the same kind of browser measured in the same run (docs/benchmarks.md, section
 * "CDP gateway"; bench/cdp_bench.sh runs it).
 *
 * Two phases, each with its own `browserd serve` (fresh database, loopback ports chosen by the
 * kernel, TMPDIR inside the run's directory so every profile lands there):
 *
 *   fake:  browserd's --chromium is this very binary, which turns into a fake browser when it
 *          sees --remote-debugging-pipe among its arguments: it reads NUL-delimited commands on
 *          fd 3 and answers at once on fd 4 (the observer's setup, the pool's probe, and the
 *          bench's own Bench.big / Bench.echo). "Direct" is the same fake started by the bench
 *          on two socketpairs, exactly as browserd wires Chromium. So the ratio is the relay's
 *          own cost: browserd's WebSocket + pipe hops against the bare pipe.
 *   real:  browserd with Debian's /usr/bin/chromium and a warm pool, against a second Chromium
 *          the bench launches itself with browserd's flags on --remote-debugging-pipe.
 *
 * Figures (medians; batches of both sides alternate so that the shared machine's noise hits
 * both equally):
 *   rtt       Browser.getVersion round trips; with Chromium also Runtime.evaluate("1+1") in a
 *             page session (Target.createTarget + attachToTarget flatten).
 *   big       a 20 MiB answer: fake Bench.big (browser -> client only), fake Bench.echo (the
 *             client sends 20 MiB, the fake echoes them: both directions), Chromium
 *             Runtime.evaluate("'x'.repeat(20 MiB)", returnByValue).
 *   connect   TCP connect + upgrade (101) + Browser.getVersion answered, with a warm pool;
 *             baselines: the same command's round trip on an open direct connection, and the
 *             direct browser's cold launch -> first answer.
 *   memory    browserd's VmRSS with K idle sessions open minus the baseline with none, / K,
 *             first thing on each fresh daemon (split into main heap / worker arenas).
 *   floor     a loopback TCP round trip between two processes: what any relay hop adds.
 *
 * Goals are reported as met / NOT MET; the exit status is non-zero only for errors. The whole
 * run is bounded by an alarm (--limit, default 150 s). The bench is a child subreaper, so
 * whatever Chromium double-forks comes back to it and is reaped before it exits.
 *
 * Usage: cdp_bench --browserd PATH --tmp DIR [--chromium PATH] [--phases fake,real]
 *                  [--rtt-rounds R] [--rtt-batch N] [--big-reps N] [--real-big-reps N] [--big-mib M]
 *                  [--connect-reps N] [--sessions K] [--real-sessions K] [--limit S]
 *                  [--browserd-env NAME=VALUE]... (for browserd only, e.g. GLIBC_TUNABLES experiments) */
#include "cdp/browser.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cdp/cdp_scan.h"
#include "ws/ws_codec.h"

#define CHUNK ((size_t)64 << 10)

/* ============================================================ fake browser ================== */

/* The fake's answers. Every command gets one at once; the bench's own methods:
 *   Bench.big  {"bytes":N}     -> {"id":..,"result":{"data":"AAAA..."}} (N bytes of data)
 *   Bench.echo {"data":"..."}  -> {"id":..,"result":<params as received>}  */
static bool fd_write_all(int fd, struct iovec *iov, int n) {
    while (n > 0) {
        ssize_t k = writev(fd, iov, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return false;
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return true;
}

static char *fake_big;
static size_t fake_big_len;

static bool fake_answer(char *msg, size_t len) {
    cdp_msg_t m;
    if (cdp_scan(msg, len, &m) != 0 || !m.id_is_int) return true; /* not a command: ignored */
    char head[256], sid[128] = "";
    if (m.session_id.ptr && m.session_id.len < 100)
        snprintf(sid, sizeof sid, ",\"sessionId\":\"%.*s\"", (int)m.session_id.len, m.session_id.ptr);
    const char *body = "{}";
    struct iovec iov[4];
    int n = 0;
    static char nul = '\0';
    int hl;
    if (cdp_string_equals(m.method, "Target.attachToBrowserTarget", 28)) {
        body = "{\"sessionId\":\"obs\"}";
    } else if (cdp_string_equals(m.method, "Browser.getVersion", 18)) {
        body = "{\"protocolVersion\":\"1.3\",\"product\":\"HeadlessChrome/156.0.0.0\",\"revision\":\"@0\","
               "\"userAgent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "HeadlessChrome/156.0.0.0 Safari/537.36\",\"jsVersion\":\"15.6\"}";
    } else if (cdp_string_equals(m.method, "Bench.big", 9)) {
        cdp_value_t v;
        int64_t want = 0;
        if (m.params.ptr && cdp_object_get(m.params.ptr, m.params.len, "bytes", 5, &v) == 0)
            cdp_number_int(v.raw, &want);
        if (want < 0 || want > ((int64_t)1 << 30)) want = 0;
        if (!fake_big || fake_big_len != (size_t)want) {
            free(fake_big);
            fake_big = malloc((size_t)want + 1);
            if (!fake_big) return false;
            memset(fake_big, 'A', (size_t)want);
            fake_big_len = (size_t)want;
        }
        hl = snprintf(head, sizeof head, "{\"id\":%lld,\"result\":{\"data\":\"", (long long)m.id);
        iov[n++] = (struct iovec){head, (size_t)hl};
        iov[n++] = (struct iovec){fake_big, fake_big_len};
        static char tail[256];
        int tl = snprintf(tail, sizeof tail, "\"}%s}", sid);
        iov[n++] = (struct iovec){tail, (size_t)tl};
        iov[n++] = (struct iovec){&nul, 1};
        return fd_write_all(4, iov, n);
    } else if (cdp_string_equals(m.method, "Bench.echo", 10) && m.params.ptr) {
        hl = snprintf(head, sizeof head, "{\"id\":%lld,\"result\":", (long long)m.id);
        iov[n++] = (struct iovec){head, (size_t)hl};
        iov[n++] = (struct iovec){(char *)m.params.ptr, m.params.len};
        static char tail[256];
        int tl = snprintf(tail, sizeof tail, "%s}", sid);
        iov[n++] = (struct iovec){tail, (size_t)tl};
        iov[n++] = (struct iovec){&nul, 1};
        return fd_write_all(4, iov, n);
    }
    char out[1024];
    hl = snprintf(out, sizeof out, "{\"id\":%lld,\"result\":%s%s}", (long long)m.id, body, sid);
    iov[0] = (struct iovec){out, (size_t)hl + 1}; /* snprintf's NUL is the delimiter */
    return fd_write_all(4, iov, 1);
}

/* Chromium's flags are accepted and ignored; fd 3 in, fd 4 out; EOF on fd 3 ends it. */
static int fake_browser_main(void) {
    signal(SIGPIPE, SIG_DFL);
    size_t cap = CHUNK, len = 0, start = 0, scan = 0;
    char *buf = malloc(cap);
    if (!buf) return 1;
    for (;;) {
        if (cap - len < CHUNK) {
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) return 1;
            buf = nb;
            cap = ncap;
        }
        ssize_t k = read(3, buf + len, cap - len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        len += (size_t)k;
        char *nul;
        while ((nul = memchr(buf + scan, '\0', len - scan))) {
            size_t end = (size_t)(nul - buf);
            if (!fake_answer(buf + start, end - start)) return 0;
            start = scan = end + 1;
        }
        scan = len;
        if (start) {
            memmove(buf, buf + start, len - start);
            len -= start;
            scan -= start;
            start = 0;
        }
        if (cap > ((size_t)1 << 20) && len < CHUNK) { /* give a big buffer back */
            char *nb = realloc(buf, CHUNK * 2);
            if (nb) {
                buf = nb;
                cap = CHUNK * 2;
            }
        }
    }
}

/* ============================================================ utilities ===================== */

static char g_tmp[PATH_MAX];
static const char *g_browserd_env[8]; /* --browserd-env NAME=VALUE: for browserd only (experiments) */
static int g_browserd_nenv;
static char g_self[PATH_MAX];
static pid_t g_browserd = -1;
static pid_t g_direct = -1; /* leader of the direct browser's process group */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Async-signal-safe: ends what we started and exits (the script removes the directory). */
static void stop_everything(int code) {
    if (g_direct > 0) kill(-g_direct, SIGKILL);
    if (g_browserd > 0) kill(g_browserd, SIGKILL); /* its supervisors clean up (parent-death signal) */
    _exit(code);
}

static void on_alarm(int sig) {
    static const char msg[] = "cdp_bench: time limit reached or interrupted, stopping everything\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    (void)sig;
    stop_everything(3);
}

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cdp_bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    stop_everything(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static double median(double *v, size_t n) { return pct(v, n, 0.5); }

static long rss_kib(pid_t pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') v = atol(line + fl + 1);
    fclose(f);
    return v;
}

/* CPU time of browserd's main thread (its event loop: every relayed byte goes through it) in
 * seconds, from /proc/PID/schedstat (ns precision; unlike wall time, hardly touched by what the
 * neighbours on a shared machine do). -1 if unknown. */
static double loop_cpu_s(void) {
    if (g_browserd <= 0) return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)g_browserd);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    unsigned long long ns = 0;
    int n = fscanf(f, "%llu", &ns);
    fclose(f);
    return n == 1 ? (double)ns / 1e9 : -1;
}

/* Every process whose command line mentions the run's directory (Chromium's profile flags
 * and browserd's supervisors all do); optionally SIGKILLs them. */
static int count_ours(bool kill_them) {
    DIR *d = opendir("/proc");
    if (!d) return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == getpid()) continue;
        char path[64], cmd[8192];
        snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, cmd, sizeof cmd - 1);
        close(fd);
        if (n <= 0) continue;
        for (ssize_t i = 0; i < n; i++)
            if (!cmd[i]) cmd[i] = ' ';
        cmd[n] = '\0';
        if (strstr(cmd, g_tmp)) {
            count++;
            if (kill_them) kill(pid, SIGKILL);
        }
    }
    closedir(d);
    return count;
}

/* Reaps every child (we are a subreaper: orphans of our descendants come here too),
 * SIGKILLing what is still alive after `grace` seconds. */
static void reap_all(double grace) {
    double t_end = now_s() + grace;
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) continue;
        if (p < 0 && errno == ECHILD) return;
        if (now_s() > t_end) {
            char path[64], list[4096];
            snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            ssize_t n = fd >= 0 ? read(fd, list, sizeof list - 1) : -1;
            if (fd >= 0) close(fd);
            if (n > 0) {
                list[n] = '\0';
                for (char *s = list, *tok; (tok = strtok_r(s, " \n", &s));) kill(atoi(tok), SIGKILL);
            }
        }
        sleep_s(0.01);
    }
}

/* ============================================================ connections =================== */

/* One CDP connection as the client sees it: a WebSocket to browserd, or a pipe pair to a
 * browser (fd_in reads its fd 4, fd_out writes its fd 3). Both read the same way: fresh
 * buffers per large message (like any client), big reads, no extra copy. */
typedef struct {
    bool ws;
    int fd_in, fd_out;
    ws_reader_t rd;
    uint8_t rbuf[CHUNK];
    size_t roff, rlen;
    char *pbuf;
    size_t pcap, plen, pstart, pscan;
    int next_id;
} conn_t;

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

static bool wait_fd(int fd, short ev, double deadline) {
    for (;;) {
        int ms = (int)((deadline - now_s()) * 1000.0);
        if (ms < 0) return false;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, ms);
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) return false;
    }
}

static bool write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
        if (k < 0 && errno == ENOTSOCK) k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        len -= (size_t)k;
    }
    return true;
}

/* Sends one small text message (len bytes, no terminator). */
static bool conn_send(conn_t *c, const char *msg, size_t len) {
    if (!c->ws) {
        struct iovec iov[2] = {{(char *)msg, len}, {"", 1}};
        return fd_write_all(c->fd_out, iov, 2);
    }
    uint8_t stackbuf[4096];
    uint8_t *f = len + WS_MAX_HEADER <= sizeof stackbuf ? stackbuf : malloc(len + WS_MAX_HEADER);
    if (!f) return false;
    size_t hl = ws_frame_header(f, WS_OP_TEXT, true, len, MASK);
    ws_mask(f + hl, (const uint8_t *)msg, len, MASK, 0);
    bool ok = write_all(c->fd_out, f, hl + len);
    if (f != stackbuf) free(f);
    return ok;
}

/* The next message (malloc'ed, NUL-terminated; the caller frees), or NULL on timeout/error. */
static char *conn_recv(conn_t *c, size_t *out_len, double deadline) {
    if (c->ws) {
        for (;;) {
            while (c->roff < c->rlen) {
                ws_event_t ev;
                size_t used = ws_reader_feed(&c->rd, c->rbuf + c->roff, c->rlen - c->roff, &ev);
                c->roff += used;
                if (ev.type == WS_EV_MESSAGE) {
                    *out_len = ev.len;
                    return (char *)ev.data;
                }
                if (ev.type == WS_EV_CLOSE || ev.type == WS_EV_ERROR) {
                    fprintf(stderr, "cdp_bench: websocket %s %u %s\n", ev.type == WS_EV_CLOSE ? "closed" : "error",
                            ev.close_code, ev.type == WS_EV_CLOSE ? (const char *)ev.data : ev.reason);
                    return NULL;
                }
                if (ev.type == WS_EV_NONE) break;
            }
            c->roff = c->rlen = 0;
            if (!wait_fd(c->fd_in, POLLIN, deadline)) return NULL;
            size_t cap;
            uint8_t *direct = ws_reader_direct_buf(&c->rd, CHUNK, &cap);
            if (direct) {
                ssize_t k = recv(c->fd_in, direct, cap, 0);
                if (k <= 0) return NULL;
                ws_event_t ev;
                ws_reader_direct_commit(&c->rd, (size_t)k, &ev);
                if (ev.type == WS_EV_MESSAGE) {
                    *out_len = ev.len;
                    return (char *)ev.data;
                }
                if (ev.type != WS_EV_NONE) return NULL;
                continue;
            }
            ssize_t k = recv(c->fd_in, c->rbuf, sizeof c->rbuf, 0);
            if (k <= 0) return NULL;
            c->rlen = (size_t)k;
        }
    }
    for (;;) {
        char *nul = c->plen > c->pscan ? memchr(c->pbuf + c->pscan, '\0', c->plen - c->pscan) : NULL;
        if (nul) {
            size_t end = (size_t)(nul - c->pbuf), len = end - c->pstart;
            char *msg;
            if (c->pstart == 0 && len >= CHUNK) { /* hand the buffer over, as browserd does */
                size_t rest = c->plen - (end + 1);
                char *nb = malloc(rest + CHUNK);
                if (!nb) return NULL;
                memcpy(nb, c->pbuf + end + 1, rest);
                msg = c->pbuf;
                c->pbuf = nb;
                c->pcap = rest + CHUNK;
                c->plen = rest;
                c->pstart = c->pscan = 0;
            } else {
                msg = malloc(len + 1);
                if (!msg) return NULL;
                memcpy(msg, c->pbuf + c->pstart, len + 1);
                c->pstart = c->pscan = end + 1;
            }
            *out_len = len;
            return msg;
        }
        c->pscan = c->plen;
        if (c->pstart) {
            memmove(c->pbuf, c->pbuf + c->pstart, c->plen - c->pstart);
            c->plen -= c->pstart;
            c->pscan -= c->pstart;
            c->pstart = 0;
        }
        if (c->pcap - c->plen < CHUNK) {
            size_t ncap = c->pcap ? c->pcap * 2 : CHUNK;
            char *nb = realloc(c->pbuf, ncap);
            if (!nb) return NULL;
            c->pbuf = nb;
            c->pcap = ncap;
        }
        if (!wait_fd(c->fd_in, POLLIN, deadline)) return NULL;
        ssize_t k = read(c->fd_in, c->pbuf + c->plen, c->pcap - c->plen);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return NULL;
        c->plen += (size_t)k;
    }
}

/* Waits for the answer to `id` (events and other answers are dropped). Returns the message
 * (the caller frees) with *m scanned, or NULL. */
/* Page sessions auto-attached to the observer-like session of observer_like_setup. */
static char g_obs_pages[8][128];
static int g_obs_npages;

static void note_attached(const char *msg, size_t len, const cdp_msg_t *m) {
    cdp_value_t sid, info, type;
    if (!cdp_string_equals(m->method, "Target.attachedToTarget", 23) || !m->params.ptr) return;
    if (cdp_object_get(m->params.ptr, m->params.len, "sessionId", 9, &sid) != 0 || sid.str.len >= 128 ||
        cdp_object_get(m->params.ptr, m->params.len, "targetInfo", 10, &info) != 0 ||
        cdp_object_get(info.raw.ptr, info.raw.len, "type", 4, &type) != 0 || !cdp_string_equals(type.str, "page", 4) ||
        g_obs_npages == 8)
        return;
    memcpy(g_obs_pages[g_obs_npages], sid.str.ptr, sid.str.len);
    g_obs_pages[g_obs_npages++][sid.str.len] = '\0';
    (void)msg;
    (void)len;
}

static char *conn_wait_reply(conn_t *c, int id, cdp_msg_t *m, size_t *len_out, double deadline) {
    for (;;) {
        size_t len;
        char *msg = conn_recv(c, &len, deadline);
        if (!msg) return NULL;
        cdp_msg_t mm;
        if (cdp_scan(msg, len, &mm) == 0 && mm.id_is_int && mm.id == id) {
            if (m) *m = mm;
            if (len_out) *len_out = len;
            return msg;
        }
        if (!(mm.present & CDP_KEY_ID) && mm.method.ptr) note_attached(msg, len, &mm);
        free(msg);
    }
}

/* Sends a command and waits for its answer; returns the answer (caller frees) or NULL. */
static char *conn_call(conn_t *c, const char *session, const char *method, const char *params, cdp_msg_t *m,
                       double timeout) {
    char buf[2048];
    int id = ++c->next_id;
    int n;
    if (session)
        n = snprintf(buf, sizeof buf, "{\"id\":%d,\"sessionId\":\"%s\",\"method\":\"%s\",\"params\":%s}", id, session,
                     method, params ? params : "{}");
    else
        n = snprintf(buf, sizeof buf, "{\"id\":%d,\"method\":\"%s\",\"params\":%s}", id, method, params ? params : "{}");
    if (n < 0 || (size_t)n >= sizeof buf || !conn_send(c, buf, (size_t)n)) return NULL;
    return conn_wait_reply(c, id, m, NULL, now_s() + timeout);
}

static void conn_close(conn_t *c) {
    if (c->ws) {
        uint8_t f[WS_MAX_CONTROL_FRAME];
        size_t n = ws_close_frame(f, WS_CLOSE_NORMAL, "", 0, MASK);
        if (n) write_all(c->fd_out, f, n);
        ws_reader_free(&c->rd);
    }
    if (c->fd_in >= 0) close(c->fd_in);
    if (c->fd_out >= 0 && c->fd_out != c->fd_in) close(c->fd_out);
    free(c->pbuf);
    free(c);
}

static void b64(const uint8_t *in, size_t n, char *out) {
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = T[v >> 18 & 63];
        out[o++] = T[v >> 12 & 63];
        out[o++] = i + 1 < n ? T[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? T[v & 63] : '=';
    }
    out[o] = '\0';
}

typedef struct {
    int port;
    char password[128];
} endpoint_t;

/* TCP connect + WebSocket upgrade. *t_upgrade (if given) = seconds from before connect() to
 * the 101 read. */
static conn_t *ws_connect(const endpoint_t *ep, double *t_upgrade, double timeout) {
    double t0 = now_s(), deadline = t0 + timeout;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ep->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return NULL;
    }
    char cred[256], auth[400], req[1024];
    int cl = snprintf(cred, sizeof cred, "brd-customer-default-zone-scraping_browser1:%s", ep->password);
    b64((const uint8_t *)cred, (size_t)cl, auth);
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "Authorization: Basic %s\r\n\r\n",
                     ep->port, auth);
    if (!write_all(fd, req, (size_t)n)) {
        close(fd);
        return NULL;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->ws = true;
    c->fd_in = c->fd_out = fd;
    ws_reader_config_t rc = {.role = WS_ROLE_CLIENT};
    ws_reader_init(&c->rd, &rc);
    char head[4096];
    size_t hl = 0;
    for (;;) {
        if (!wait_fd(fd, POLLIN, deadline)) goto bad;
        ssize_t k = recv(fd, head + hl, sizeof head - 1 - hl, 0);
        if (k <= 0) goto bad;
        hl += (size_t)k;
        head[hl] = '\0';
        char *e = strstr(head, "\r\n\r\n");
        if (e) {
            size_t used = (size_t)(e - head) + 4;
            if (strncmp(head, "HTTP/1.1 101", 12) != 0 || !strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
                fprintf(stderr, "cdp_bench: upgrade refused: %.*s\n", (int)(used > 300 ? 300 : used), head);
                goto bad;
            }
            memcpy(c->rbuf, head + used, hl - used);
            c->rlen = hl - used;
            break;
        }
        if (hl + 1 >= sizeof head) goto bad;
    }
    if (t_upgrade) *t_upgrade = now_s() - t0;
    return c;
bad:
    conn_close(c);
    return NULL;
}

/* ============================================================ processes ===================== */

/* Starts a browser (Chromium or this binary as the fake) on two socketpairs, as browserd
 * wires it, with its profile and HOME/XDG/TMPDIR inside dir. */
static conn_t *direct_launch(const char *exe, const char *dir, pid_t *pid_out) {
    int to_b[2], from_b[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to_b) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, from_b) < 0)
        fail("socketpair: %s", strerror(errno));
    char data[PATH_MAX + 32], home[PATH_MAX + 8], tmp[PATH_MAX + 8], ud[PATH_MAX + 48];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    snprintf(ud, sizeof ud, "--user-data-dir=%s", data);
    mkdir(dir, 0700);
    mkdir(data, 0700);
    mkdir(home, 0700);
    mkdir(tmp, 0700);
    char *args[20];
    int n = 0;
    args[n++] = (char *)exe;
    const char *base[BROWSER_BASE_ARGS_MAX];
    size_t nbase = browser_base_args(base, geteuid() == 0); /* the options browserd gives its browsers */
    for (size_t i = 0; i < nbase; i++) args[n++] = (char *)base[i];
    args[n++] = ud;
    args[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int a = fcntl(to_b[1], F_DUPFD, 10), b = fcntl(from_b[1], F_DUPFD, 10);
        dup2(a, 3);
        dup2(b, 4);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        for (int fd = 5; fd < 1024; fd++) close(fd);
        setenv("HOME", home, 1);
        setenv("XDG_CONFIG_HOME", home, 1);
        setenv("XDG_CACHE_HOME", home, 1);
        setenv("TMPDIR", tmp, 1);
        if (chdir(home) < 0) _exit(127);
        execv(exe, args);
        _exit(127);
    }
    setpgid(pid, pid);
    close(to_b[1]);
    close(from_b[1]);
    conn_t *c = calloc(1, sizeof *c);
    if (!c) fail("out of memory");
    c->fd_out = to_b[0];
    c->fd_in = from_b[0];
    *pid_out = pid;
    return c;
}

static void direct_kill(pid_t *pid) {
    if (*pid <= 0) return;
    kill(-*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = -1;
}

static bool file_find(const char *path, const char *key, char *out, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[1024];
    bool found = false;
    size_t kl = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        char *p = strstr(line, key);
        if (p) {
            p += kl;
            size_t l = strcspn(p, " \r\n");
            if (l >= cap) l = cap - 1;
            memcpy(out, p, l);
            out[l] = '\0';
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* browserd serve on ephemeral loopback ports, fresh database, TMPDIR in the run's directory. */
static void browserd_start(const char *browserd, const char *name, const char *chromium, int pool, endpoint_t *ep) {
    char db[PATH_MAX + 64], out[PATH_MAX + 64], log[PATH_MAX + 64], pool_s[16];
    snprintf(db, sizeof db, "%s/%s.db", g_tmp, name);
    snprintf(out, sizeof out, "%s/%s.out", g_tmp, name);
    snprintf(log, sizeof log, "%s/%s.log", g_tmp, name);
    snprintf(pool_s, sizeof pool_s, "%d", pool);
    char *args[20];
    int n = 0;
    args[n++] = (char *)browserd;
    args[n++] = "--db";
    args[n++] = db;
    args[n++] = "serve";
    args[n++] = "--api-listen";
    args[n++] = "127.0.0.1:0";
    args[n++] = "--cdp-listen";
    args[n++] = "127.0.0.1:0";
    args[n++] = "--pool";
    args[n++] = pool_s;
    args[n++] = "--max-sessions";
    args[n++] = "1000";
    if (chromium) {
        args[n++] = "--chromium";
        args[n++] = (char *)chromium;
    }
    args[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), l = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(o, 1);
        dup2(l, 2);
        setenv("TMPDIR", g_tmp, 1);
        for (int i = 0; i < g_browserd_nenv; i++) putenv((char *)g_browserd_env[i]);
        execv(browserd, args);
        _exit(127);
    }
    g_browserd = pid;
    double deadline = now_s() + 15;
    char port[16];
    while (!file_find(log, "event=listening cdp=ws://127.0.0.1:", port, sizeof port) ||
           !file_find(out, "zone_password=", ep->password, sizeof ep->password)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            g_browserd = -1;
            fail("browserd exited at start (see %s)", log);
        }
        if (now_s() > deadline) fail("browserd did not start within 15 s (see %s)", log);
        sleep_s(0.01);
    }
    ep->port = atoi(port);
}

static void browserd_stop(void) {
    if (g_browserd <= 0) return;
    kill(g_browserd, SIGTERM);
    double deadline = now_s() + 20;
    for (;;) {
        int st;
        if (waitpid(g_browserd, &st, WNOHANG) == g_browserd) break;
        if (now_s() > deadline) {
            fprintf(stderr, "cdp_bench: browserd did not stop within 20 s; SIGKILL\n");
            kill(g_browserd, SIGKILL);
            waitpid(g_browserd, &st, 0);
            break;
        }
        sleep_s(0.01);
    }
    g_browserd = -1;
}

/* ============================================================ measurements ================== */

typedef struct {
    double *v;
    size_t n, cap;
} samples_t;

static void add(samples_t *s, double x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) fail("out of memory");
    }
    s->v[s->n++] = x;
}

static void verdict(const char *goal, bool met) { printf("    goal %s: %s\n", goal, met ? "met" : "NOT MET"); }

/* One line for bench/all.sh's regression check (bench/baseline.tsv): a name, a value and which
 * way is better. */
static void measure(const char *what, const char *label, double value, bool higher_is_better) {
    printf("=measure\tcdp %s %s\t%.4g\t%s\n", what, label, value, higher_is_better ? "higher" : "lower");
}

/* One round trip of `method` (params, in session) on c, in seconds. */
static double one_rtt(conn_t *c, const char *session, const char *method, const char *params) {
    double t0 = now_s();
    cdp_msg_t m;
    char *r = conn_call(c, session, method, params, &m, 10);
    double t = now_s() - t0;
    if (!r) fail("no answer to %s", method);
    if (m.error.ptr) fail("%s failed: %.*s", method, (int)(m.error.len > 300 ? 300 : m.error.len), m.error.ptr);
    free(r);
    return t;
}

/* Round trips, alternating batches between the two connections. */
static void rtt_compare(const char *label, conn_t *direct, const char *dsess, conn_t *via, const char *vsess,
                        const char *method, const char *params, int rounds, int batch, bool goal) {
    samples_t d = {0}, v = {0};
    for (int i = 0; i < 20; i++) { /* warm-up */
        one_rtt(direct, dsess, method, params);
        one_rtt(via, vsess, method, params);
    }
    double cpu = 0;
    for (int r = 0; r < rounds; r++)
        for (int side = 0; side < 2; side++) {
            bool is_direct = (side == 0) == (r % 2 == 0);
            double c0 = is_direct ? 0 : loop_cpu_s();
            for (int i = 0; i < batch; i++) {
                if (is_direct) add(&d, one_rtt(direct, dsess, method, params));
                else add(&v, one_rtt(via, vsess, method, params));
            }
            if (!is_direct) cpu += loop_cpu_s() - c0;
        }
    double dm = median(d.v, d.n), vm = median(v.v, v.n);
    double d99 = pct(d.v, d.n, 0.99), v99 = pct(v.v, v.n, 0.99);
    printf("  rtt %-34s direct p50 %7.1f us p99 %7.1f | browserd p50 %7.1f us p99 %7.1f | ratio %.2fx (+%.1f us)"
           "  [%zu each]\n",
           label, dm * 1e6, d99 * 1e6, vm * 1e6, v99 * 1e6, vm / dm, (vm - dm) * 1e6, d.n);
    printf("      browserd's loop thread: %.1f us of CPU per round trip (both messages, all its work)\n",
           cpu / (double)v.n * 1e6);
    measure("rtt ratio", label, vm / dm, false);
    measure("rtt loop CPU (us)", label, cpu / (double)v.n * 1e6, false);
    if (goal) verdict("<= 1.05x of direct", vm / dm <= 1.05);
    free(d.v);
    free(v.v);
}

/* A big exchange: `req` (already framed for the side: pipe message + NUL, or masked frame) is
 * written whole; the answer to `id` is read. Returns seconds; *answer_len is its size. */
static double big_once(conn_t *c, const uint8_t *req, size_t req_len, int id, size_t *answer_len) {
    double t0 = now_s();
    if (!write_all(c->fd_out, req, req_len)) fail("write failed");
    cdp_msg_t m;
    char *r = conn_wait_reply(c, id, &m, answer_len, now_s() + 60);
    double t = now_s() - t0;
    if (!r) fail("no answer to a big message");
    if (m.error.ptr) fail("big message failed: %.*s", (int)(m.error.len > 300 ? 300 : m.error.len), m.error.ptr);
    free(r);
    return t;
}

/* The command as both sides send it: plain + NUL (pipe) and as one masked frame (WebSocket). */
typedef struct {
    uint8_t *plain, *frame; /* plain has the NUL at plain[len] */
    size_t len, hl;
    size_t id_off; /* 7 id digits there, rewritten per request */
} bigreq_t;

static void bigreq_make(bigreq_t *b, const char *pre, const char *fill, size_t fill_len, const char *post) {
    size_t pl = strlen(pre), ql = strlen(post);
    b->len = 16 + pl + fill_len + ql;
    b->plain = malloc(b->len + 1);
    b->frame = malloc(b->len + WS_MAX_HEADER);
    if (!b->plain || !b->frame) fail("out of memory");
    int n = snprintf((char *)b->plain, 17, "{\"id\":1000000,  ");
    (void)n;
    b->id_off = 6;
    memcpy(b->plain + 16, pre, pl);
    if (fill_len) memset(b->plain + 16 + pl, fill[0], fill_len);
    memcpy(b->plain + 16 + pl + fill_len, post, ql);
    b->plain[b->len] = '\0';
    b->hl = ws_frame_header(b->frame, WS_OP_TEXT, true, b->len, MASK);
    ws_mask(b->frame + b->hl, b->plain, b->len, MASK, 0);
}

static void bigreq_set_id(bigreq_t *b, int id) {
    char d[8];
    snprintf(d, sizeof d, "%07d", id);
    memcpy(b->plain + b->id_off, d, 7);
    ws_mask(b->frame + b->hl + b->id_off, b->plain + b->id_off, 7, MASK, b->id_off);
}

static void bigreq_free(bigreq_t *b) {
    free(b->plain);
    free(b->frame);
}

/* The same big command both ways (each side its own request: with Chromium the page session
 * ids differ), alternating ABBA; the first pair is a warm-up (page faults, allocators). Prints
 * the medians and the best runs: on a shared machine the best run is the cost without the
 * neighbours, the median the cost with them. */
static void big_compare(const char *label, conn_t *direct, bigreq_t *dreq, conn_t *via, bigreq_t *vreq, int reps,
                        double moved_factor) {
    static int next = 1000001;
    samples_t d = {0}, v = {0}, cpu = {0};
    size_t alen = 0;
    for (int r = 0; r < reps + 1; r++)
        for (int side = 0; side < 2; side++) {
            bool is_direct = (side == 0) == (r % 2 == 0);
            conn_t *c = is_direct ? direct : via;
            bigreq_t *q = is_direct ? dreq : vreq;
            int id = next++;
            bigreq_set_id(q, id);
            double c0 = loop_cpu_s();
            double t = c->ws ? big_once(c, q->frame, q->hl + q->len, id, &alen)
                             : big_once(c, q->plain, q->len + 1, id, &alen);
            if (r > 0) add(is_direct ? &d : &v, t);
            if (r > 0 && !is_direct) add(&cpu, loop_cpu_s() - c0);
            if (getenv("CDP_BENCH_VERBOSE"))
                fprintf(stderr, "    %s %s %.1f ms\n", label, is_direct ? "direct" : "via", t * 1e3);
        }
    double dm = median(d.v, d.n), vm = median(v.v, v.n);
    double db = pct(d.v, d.n, 0), vb = pct(v.v, v.n, 0);
    double bytes = (double)alen * moved_factor;
    printf("  big %-34s direct p50 %7.1f ms %6.0f MB/s | browserd p50 %7.1f ms %6.0f MB/s | ratio %.2fx"
           "  (best %.1f vs %.1f ms: %.2fx)  [%zu each, answer %.1f MB]\n",
           label, dm * 1e3, bytes / dm / 1e6, vm * 1e3, bytes / vm / 1e6, dm / vm, db * 1e3, vb * 1e3, db / vb, d.n,
           (double)alen / 1e6);
    double cm = median(cpu.v, cpu.n);
    printf("      browserd's loop thread: %.1f ms of CPU per exchange (median; %.0f MB/s of its CPU for the %.1f MB "
           "it relays)\n",
           cm * 1e3, bytes / cm / 1e6, bytes / 1e6);
    measure("large message throughput ratio", label, dm / vm, true);
    measure("large message loop CPU (ms)", label, cm * 1e3, false);
    verdict(">= 0.9x of direct (median)", dm / vm >= 0.9);
    free(d.v);
    free(v.v);
    free(cpu.v);
}

static double direct_rtt_of(conn_t *direct) {
    samples_t d = {0};
    for (int i = 0; i < 200; i++) add(&d, one_rtt(direct, NULL, "Browser.getVersion", NULL));
    double m = median(d.v, d.n);
    free(d.v);
    return m;
}

/* Connect + upgrade + Browser.getVersion answered, `reps` times with `gap` seconds between
 * (so the pool refills); the last connection is returned open if keep_last. */
static conn_t *connect_series(const endpoint_t *ep, int reps, double gap, bool keep_last, samples_t *total,
                              samples_t *upgrade) {
    conn_t *last = NULL;
    for (int i = 0; i < reps; i++) {
        if (i) sleep_s(gap);
        double t0 = now_s(), tu;
        conn_t *c = ws_connect(ep, &tu, 15);
        if (!c) fail("connect failed");
        cdp_msg_t m;
        char *r = conn_call(c, NULL, "Browser.getVersion", NULL, &m, 15);
        double t = now_s() - t0;
        if (!r) fail("no first answer");
        free(r);
        add(total, t);
        add(upgrade, tu);
        if (getenv("CDP_BENCH_VERBOSE")) fprintf(stderr, "    connect %.2f ms (101 after %.2f ms)\n", t * 1e3, tu * 1e3);
        if (keep_last && i == reps - 1) last = c;
        else conn_close(c);
    }
    return last;
}

static void report_connect(const char *label, samples_t *total, samples_t *upgrade, double direct_rtt,
                           double cold_launch) {
    double tm = median(total->v, total->n), tmax = pct(total->v, total->n, 1.0);
    double tmin = pct(total->v, total->n, 0.0);
    double um = median(upgrade->v, upgrade->n);
    printf("  connect %-30s p50 %6.2f ms (min %.2f, max %.2f; of which TCP connect + 101 p50 %.2f) [%zu]\n", label,
           tm * 1e3, tmin * 1e3, tmax * 1e3, um * 1e3, total->n);
    printf("      baselines: the same command on an already open direct pipe %.3f ms; a direct browser's cold "
           "launch -> first answer %.0f ms (what a session waits without the pool: ratio %.3fx)\n",
           direct_rtt * 1e3, cold_launch * 1e3, tm / cold_launch);
    measure("connect p50 (ms)", label, tm * 1e3, false);
    verdict("< 50 ms (p50)", tm < 0.050);
}

/* CDP_BENCH_SMAPS=1: which mappings of browserd grew (diagnosis of the memory figure). */
typedef struct {
    unsigned long start;
    long rss;
    char name[96];
} mapping_t;

static size_t smaps_read(pid_t pid, mapping_t *out, size_t cap) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char name[256] = "";
        char *sp = strchr(line, ' ');
        bool field = sp && sp > line && sp[-1] == ':';
        if (!field && sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &a, &b, name) >= 2) {
            if (n == cap) break;
            out[n].start = a;
            out[n].rss = 0;
            snprintf(out[n].name, sizeof out[n].name, "%s", name[0] ? name : "[anon]");
            n++;
        } else if (n && strncmp(line, "Rss:", 4) == 0) {
            out[n - 1].rss = atol(line + 4);
        }
    }
    fclose(f);
    return n;
}

/* Growth of the main heap (the loop thread's small allocations: sessions live there), of
 * glibc's worker-thread arenas (anonymous mappings aligned to their 64 MiB reservation), and of
 * the other anonymous mappings (blocks of 128 KiB and more that malloc maps one by one, such as
 * a browser's pipe read buffer; stacks), in KiB. */
static void smaps_diff(const mapping_t *a, size_t na, const mapping_t *b, size_t nb, long *heap, long *arenas,
                       long *anon) {
    *heap = *arenas = *anon = 0;
    for (size_t j = 0; j < nb; j++) {
        long before = 0;
        for (size_t i = 0; i < na; i++)
            if (a[i].start == b[j].start) before = a[i].rss;
        if (strcmp(b[j].name, "[heap]") == 0) *heap += b[j].rss - before;
        else if (strcmp(b[j].name, "[anon]") == 0 && b[j].start % (64ul << 20) == 0) *arenas += b[j].rss - before;
        else if (strcmp(b[j].name, "[anon]") == 0) *anon += b[j].rss - before;
        if (getenv("CDP_BENCH_SMAPS") && b[j].rss - before >= 8)
            fprintf(stderr, "      smaps: %lx %-40s %ld -> %ld KiB\n", b[j].start, b[j].name, before, b[j].rss);
    }
}

/* One session opened, answered once (the caller closes it). */
static conn_t *open_session(const endpoint_t *ep, double timeout) {
    conn_t *c = ws_connect(ep, NULL, timeout);
    if (!c) fail("connect failed");
    cdp_msg_t m;
    char *r = conn_call(c, NULL, "Browser.getVersion", NULL, &m, timeout);
    if (!r) fail("no first answer");
    free(r);
    return c;
}

/* browserd's VmRSS with k idle sessions minus the baseline with none, / k. Run on a fresh
 * daemon (before any 20 MiB message): an allocator that already holds free memory from earlier
 * traffic would hide what sessions cost. One session is opened and closed first, so one-time
 * costs (worker-thread arenas, SQLite's statement and page caches) are in the baseline; the
 * marginal figure (k/2 -> k) leaves out whatever else happens once. */
static void memory_per_session(const endpoint_t *ep, pid_t bd, int k, double settle) {
    conn_close(open_session(ep, 30));
    sleep_s(settle);
    long base = rss_kib(bd, "VmRSS"), base_anon = rss_kib(bd, "RssAnon");
    static mapping_t m0[1024], m1[1024];
    size_t n0 = smaps_read(bd, m0, 1024);
    conn_t **cs = calloc((size_t)k, sizeof *cs);
    if (!cs) fail("out of memory");
    long half = 0;
    for (int i = 0; i < k; i++) {
        cs[i] = open_session(ep, 30);
        if (i == k / 2 - 1) {
            sleep_s(settle);
            half = rss_kib(bd, "VmRSS");
        }
    }
    sleep_s(settle);
    long full = rss_kib(bd, "VmRSS"), full_anon = rss_kib(bd, "RssAnon");
    long heap = 0, arenas = 0, anon = 0;
    smaps_diff(m0, n0, m1, smaps_read(bd, m1, 1024), &heap, &arenas, &anon);
    for (int i = 0; i < k; i++) conn_close(cs[i]);
    free(cs);
    sleep_s(settle);
    long after = rss_kib(bd, "VmRSS");
    double per = (double)(full - base) / k;
    double marginal = (double)(full - half) / (k - k / 2);
    printf("  memory: browserd VmRSS %ld KiB with 0 sessions, %ld with %d, %ld with %d idle sessions "
           "(RssAnon %ld -> %ld); %ld KiB after closing them\n",
           base, half, k / 2, full, k, base_anon, full_anon, after);
    printf("      per session: %.1f KiB (0 -> %d); marginal %.1f KiB (%d -> %d)\n", per, k, marginal, k / 2, k);
    printf("      growth by kind: main heap %ld KiB (%.1f per session), mmapped blocks >= 128 KiB %ld KiB (%.1f per "
           "session), worker-thread arenas %ld KiB, other %ld KiB\n",
           heap, (double)heap / k, anon, (double)anon / k, arenas, (full - base) - heap - anon - arenas);
    char label[32];
    snprintf(label, sizeof label, "K=%d", k);
    measure("memory per idle session (KiB)", label, per, false);
    verdict("< 100 KiB per session", per < 100.0);
}

/* The floor of any relay: a loopback TCP round trip of the same message between two processes
 * (a child echoes), which browserd's path adds to the pipe's. */
static double tcp_floor(size_t len, int n) {
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) < 0)
        fail("tcp floor: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = accept(ls, NULL, NULL), one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char buf[4096];
        ssize_t k;
        while ((k = recv(fd, buf, sizeof buf, 0)) > 0)
            if (!write_all(fd, buf, (size_t)k)) break;
        _exit(0);
    }
    close(ls);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("tcp floor: connect: %s", strerror(errno));
    char msg[4096], in[4096];
    memset(msg, 'x', sizeof msg);
    if (len > sizeof msg) len = sizeof msg;
    samples_t v = {0};
    for (int i = 0; i < n + 50; i++) {
        double t0 = now_s();
        if (!write_all(fd, msg, len)) fail("tcp floor: write");
        size_t got = 0;
        while (got < len) {
            ssize_t k = recv(fd, in, sizeof in, 0);
            if (k <= 0) fail("tcp floor: read");
            got += (size_t)k;
        }
        if (i >= 50) add(&v, now_s() - t0);
    }
    close(fd);
    waitpid(pid, NULL, 0);
    double m = median(v.v, v.n);
    free(v.v);
    return m;
}

static double cold_launch(conn_t *c) {
    double t0 = now_s();
    cdp_msg_t m;
    char *r = conn_call(c, NULL, "Browser.getVersion", NULL, &m, 30);
    if (!r) fail("the direct browser did not answer");
    free(r);
    return now_s() - t0;
}

/* A page session: Target.createTarget(about:blank) + attachToTarget(flatten); into sid. */
static void open_page(conn_t *c, char *sid, size_t cap) {
    cdp_msg_t m;
    char *r = conn_call(c, NULL, "Target.createTarget", "{\"url\":\"about:blank\"}", &m, 20);
    cdp_value_t v;
    if (!r || !m.result.ptr || cdp_object_get(m.result.ptr, m.result.len, "targetId", 8, &v) != 0)
        fail("Target.createTarget failed");
    char params[256];
    snprintf(params, sizeof params, "{\"targetId\":\"%.*s\",\"flatten\":true}", (int)v.str.len, v.str.ptr);
    free(r);
    r = conn_call(c, NULL, "Target.attachToTarget", params, &m, 20);
    if (!r || !m.result.ptr || cdp_object_get(m.result.ptr, m.result.len, "sessionId", 9, &v) != 0 ||
        v.str.len >= cap)
        fail("Target.attachToTarget failed");
    memcpy(sid, v.str.ptr, v.str.len);
    sid[v.str.len] = '\0';
    free(r);
}

typedef struct {
    const char *browserd, *chromium;
    int rtt_rounds, rtt_batch, big_reps, real_big_reps, connect_reps, sessions, real_sessions;
    size_t big_bytes;
} opts_t;

static void phase_fake(const opts_t *o) {
    printf("\n[fake browser] the same instant-answer fake both ways: browserd's own relay cost\n");
    endpoint_t ep;
    browserd_start(o->browserd, "fake", g_self, 2, &ep);
    sleep_s(0.5);
    memory_per_session(&ep, g_browserd, o->sessions, 0.5);

    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/direct-fake", g_tmp);
    conn_t *direct = direct_launch(g_self, dir, &g_direct);
    double launch = cold_launch(direct);
    sleep_s(0.5);
    conn_t *via = open_session(&ep, 15);

    rtt_compare("Browser.getVersion", direct, NULL, via, NULL, "Browser.getVersion", NULL, o->rtt_rounds,
                o->rtt_batch, true);
    double floor = tcp_floor(78, 2000); /* the size of the framed Browser.getVersion command */
    double direct_rtt = direct_rtt_of(direct);
    printf("      floor of any relay: a loopback TCP round trip between two processes, same size: p50 %.1f us\n",
           floor * 1e6);

    char params[64];
    snprintf(params, sizeof params, "{\"bytes\":%zu}}", o->big_bytes);
    bigreq_t big;
    bigreq_make(&big, "\"method\":\"Bench.big\",\"params\":", NULL, 0, params);
    big_compare("Bench.big (20 MiB answer)", direct, &big, via, &big, o->big_reps, 1.0);
    bigreq_free(&big);
    bigreq_make(&big, "\"method\":\"Bench.echo\",\"params\":{\"data\":\"", "B", o->big_bytes, "\"}}");
    big_compare("Bench.echo (20 MiB up + down)", direct, &big, via, &big, o->big_reps, 2.0);
    bigreq_free(&big);
    conn_close(via);

    samples_t total = {0}, upg = {0};
    sleep_s(0.5);
    connect_series(&ep, o->connect_reps * 4, 0.25, false, &total, &upg);
    report_connect("(fake, warm pool)", &total, &upg, direct_rtt, launch);
    free(total.v);
    free(upg.v);

    conn_close(direct);
    direct_kill(&g_direct);
    browserd_stop();
}

/* What browserd's observer does to every browser (src/cdp/observer.c), done on the direct
 * connection: a browser-target session with auto-attach, and Page.enable + Network.enable in
 * every page. Tells Chromium's own cost of being observed from the relay's. */
static void observer_like_setup(conn_t *c) {
    cdp_msg_t m;
    cdp_value_t v;
    char *r = conn_call(c, NULL, "Target.attachToBrowserTarget", NULL, &m, 10);
    if (!r || !m.result.ptr || cdp_object_get(m.result.ptr, m.result.len, "sessionId", 9, &v) != 0 || v.str.len >= 128)
        fail("Target.attachToBrowserTarget failed");
    char root[128];
    memcpy(root, v.str.ptr, v.str.len);
    root[v.str.len] = '\0';
    free(r);
    g_obs_npages = 0;
    free(conn_call(c, root, "Target.setDiscoverTargets", "{\"discover\":true}", &m, 10));
    free(conn_call(c, root, "Target.setAutoAttach",
                   "{\"autoAttach\":true,\"waitForDebuggerOnStart\":false,\"flatten\":true}", &m, 10));
    /* The attachedToTarget events came before the answer, or come right after it. */
    free(conn_call(c, NULL, "Browser.getVersion", NULL, &m, 10));
    for (int i = 0; i < g_obs_npages; i++) {
        free(conn_call(c, g_obs_pages[i], "Page.enable", NULL, &m, 10));
        free(conn_call(c, g_obs_pages[i], "Network.enable", NULL, &m, 10));
    }
    printf("      (direct connection now observed like browserd's browsers: %d page(s) with Page + Network "
           "enabled)\n", g_obs_npages);
}

static void phase_real(const opts_t *o) {
    printf("\n[chromium] %s via browserd (warm pool of 2) vs. a second Chromium on a pipe of its own\n",
           o->chromium);
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/direct-chromium", g_tmp);
    endpoint_t ep;
    browserd_start(o->browserd, "real", o->chromium, 2, &ep);
    if (o->real_sessions > 1) {
        sleep_s(2.0); /* the pool's first two browsers */
        memory_per_session(&ep, g_browserd, o->real_sessions, 2.0);
    }
    conn_t *direct = direct_launch(o->chromium, dir, &g_direct);
    double launch = cold_launch(direct);
    printf("  direct Chromium: launch -> first answer %.0f ms\n", launch * 1e3);
    sleep_s(2.5); /* the pool's two browsers launched together with the direct one; let them settle */

    samples_t total = {0}, upg = {0};
    conn_t *via = connect_series(&ep, o->connect_reps, 2.5, true, &total, &upg);
    sleep_s(1.5); /* the replacement launch for the kept session */

    rtt_compare("Browser.getVersion", direct, NULL, via, NULL, "Browser.getVersion", NULL, o->rtt_rounds,
                o->rtt_batch, true);
    double direct_rtt = direct_rtt_of(direct);
    char dsid[128], vsid[128];
    open_page(direct, dsid, sizeof dsid);
    open_page(via, vsid, sizeof vsid);
    rtt_compare("Runtime.evaluate 1+1 (page session)", direct, dsid, via, vsid, "Runtime.evaluate",
                "{\"expression\":\"1+1\"}", o->rtt_rounds, o->rtt_batch, true);

    char dpre[256], vpre[256];
    snprintf(dpre, sizeof dpre, "\"sessionId\":\"%s\",\"method\":\"Runtime.evaluate\",\"params\":{\"expression\":"
             "\"'x'.repeat(%zu)\",\"returnByValue\":true}}", dsid, o->big_bytes);
    snprintf(vpre, sizeof vpre, "\"sessionId\":\"%s\",\"method\":\"Runtime.evaluate\",\"params\":{\"expression\":"
             "\"'x'.repeat(%zu)\",\"returnByValue\":true}}", vsid, o->big_bytes);
    /* The session ids differ, so each side gets its own request. */
    bigreq_t dreq, vreq;
    bigreq_make(&dreq, dpre, NULL, 0, "");
    bigreq_make(&vreq, vpre, NULL, 0, "");
    big_compare("Runtime.evaluate 'x'.repeat(20 MiB)", direct, &dreq, via, &vreq, o->real_big_reps, 1.0);
    bigreq_free(&dreq);
    bigreq_free(&vreq);

    observer_like_setup(direct);
    rtt_compare("Runtime.evaluate 1+1, direct observed", direct, dsid, via, vsid, "Runtime.evaluate",
                "{\"expression\":\"1+1\"}", o->rtt_rounds, o->rtt_batch, false);

    report_connect("(Chromium, warm pool)", &total, &upg, direct_rtt, launch);
    free(total.v);
    free(upg.v);
    conn_close(via);
    conn_close(direct);
    direct_kill(&g_direct);
    browserd_stop();
}

int main(int argc, char **argv) {
    /* Our own receive buffers (the client's pipe reader, the fake's) grow geometrically with
     * realloc. A fixed mmap threshold keeps every block over 1 MiB mmapped, so growth is an
     * mremap and never a copy; glibc's default dynamic threshold rises to the size of the first
     * large block freed, after which growth copies (see docs/benchmarks.md). The client side
     * must not slow the direct path down, so both the client and the fake use it; browserd is
     * measured as it is. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--remote-debugging-pipe") == 0) return fake_browser_main();

    opts_t o = {.chromium = "/usr/bin/chromium", .rtt_rounds = 10, .rtt_batch = 100, .big_reps = 5, .real_big_reps = 5,
                .connect_reps = 5, .sessions = 48, .real_sessions = 4, .big_bytes = (size_t)20 << 20};
    const char *tmp = NULL, *phases = "fake,real";
    int limit = 150;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) fail("option %s needs a value", a);
        if (strcmp(a, "--browserd") == 0) o.browserd = v;
        else if (strcmp(a, "--tmp") == 0) tmp = v;
        else if (strcmp(a, "--chromium") == 0) o.chromium = v;
        else if (strcmp(a, "--phases") == 0) phases = v;
        else if (strcmp(a, "--rtt-rounds") == 0) o.rtt_rounds = atoi(v);
        else if (strcmp(a, "--rtt-batch") == 0) o.rtt_batch = atoi(v);
        else if (strcmp(a, "--big-reps") == 0) o.big_reps = atoi(v);
        else if (strcmp(a, "--real-big-reps") == 0) o.real_big_reps = atoi(v);
        else if (strcmp(a, "--big-mib") == 0) o.big_bytes = (size_t)atoi(v) << 20;
        else if (strcmp(a, "--connect-reps") == 0) o.connect_reps = atoi(v);
        else if (strcmp(a, "--sessions") == 0) o.sessions = atoi(v);
        else if (strcmp(a, "--real-sessions") == 0) o.real_sessions = atoi(v);
        else if (strcmp(a, "--limit") == 0) limit = atoi(v);
        else if (strcmp(a, "--browserd-env") == 0 && strchr(v, '=') && g_browserd_nenv < 8)
            g_browserd_env[g_browserd_nenv++] = v;
        else fail("unknown option %s", a);
    }
    if (!strstr(phases, "fake") && !strstr(phases, "real")) fail("--phases: fake, real or fake,real");
    if (!o.browserd || !tmp) fail("usage: cdp_bench --browserd PATH --tmp DIR [options] (see the source)");
    if (o.rtt_rounds < 1 || o.rtt_batch < 1 || o.big_reps < 1 || o.connect_reps < 1 || o.sessions < 2)
        fail("counts must be >= 1 (--sessions >= 2)");
    if (!realpath(tmp, g_tmp)) fail("--tmp %s: %s", tmp, strerror(errno));
    if (!realpath("/proc/self/exe", g_self)) fail("/proc/self/exe: %s", strerror(errno));
    static char bd[PATH_MAX];
    if (!realpath(o.browserd, bd)) fail("--browserd %s: %s", o.browserd, strerror(errno));
    o.browserd = bd;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    signal(SIGINT, on_alarm);
    signal(SIGTERM, on_alarm);
    alarm((unsigned)limit);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    setvbuf(stdout, NULL, _IOLBF, 0);

    time_t t = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M %Z", localtime(&t));
    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(la);
    }
    printf("cdp_bench %s, %ld cores, load average %.2f %.2f %.2f at start; browserd %s\n", date,
           sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2], o.browserd);
    for (int i = 0; i < g_browserd_nenv; i++) printf("  browserd environment: %s\n", g_browserd_env[i]);
    printf("  rtt: %d rounds x %d per side, batches alternating; big: %zu bytes, %d reps per side (+1 warm-up); "
           "medians\n", o.rtt_rounds, o.rtt_batch, o.big_bytes, o.big_reps);

    double t_start = now_s();
    if (strstr(phases, "fake")) phase_fake(&o);
    if (strstr(phases, "real")) phase_real(&o);

    reap_all(2.0);
    int left = count_ours(false);
    if (left > 0) {
        fprintf(stderr, "cdp_bench: %d processes of this run still alive; killing them\n", left);
        count_ours(true);
        reap_all(1.0);
    }
    la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(la);
    }
    printf("\ndone in %.1f s; load average %.2f %.2f %.2f at the end; processes of this run left: %d\n",
           now_s() - t_start, load[0], load[1], load[2], count_ours(false));
    return 0;
}
