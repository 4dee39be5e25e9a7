/* One Chromium behind a supervisor: see browser.h (API), supervisor.h (the process contract)
 * and docs/browser.md (lifecycle, failure cases). */
#include "core/log.h"
#include "cdp/browser.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdp/browser_profile.h"
#include "cdp/supervisor.h"

/* Reads ask the kernel for at least this much (libuv's own suggestion). */
#define READ_CHUNK ((size_t)64 << 10)
/* A message at least this long is handed over in the read buffer itself (no copy); a shorter
 * one is copied into a buffer of its size, so that a 100-byte event does not pin 64 KiB while
 * it waits in a client's send queue. */
#define HANDOFF_MIN ((size_t)64 << 10)
/* After browserd had to clean up itself (lost supervisor), how long the profile's lock may
 * still be held by a dying Chromium before the profile is removed anyway. */
#define FALLBACK_LOCK_WAIT_MS 3000

typedef struct {
    uv_write_t req;
    browser_t *b;
    char *msg;
} write_req_t;

struct browser {
    uv_loop_t *loop;
    browser_callbacks_t cb;
    void *ctx;

    uv_process_t proc;
    uv_pipe_t cdp_out; /* our end of Chromium's fd 3: we write */
    uv_pipe_t cdp_in;  /* our end of Chromium's fd 4: we read */
    uv_pipe_t status;  /* the supervisor's fd 5 */
    uv_timer_t timer;  /* kill escalation */
    uv_work_t work;    /* fallback profile removal */
    int handles_open;
    bool out_closed, in_closed, status_closed, proc_closed, timer_closed;

    /* Lifecycle: the browser is over when the supervisor exited, its status pipe reached EOF
     * and the CDP pipe reached EOF (all messages delivered) or was abandoned by a kill. */
    bool proc_exited, status_eof, cdp_eof;
    bool killing;        /* browser_kill (or a protocol error) */
    bool protocol_error;
    bool fallback_started, fallback_done;
    bool closing, exit_reported, freed;
    bool paused;
    int sup_exit_status, sup_term_signal;

    /* From the status pipe. */
    char sline[SUPERVISOR_STATUS_MAX_LINE];
    size_t slen;
    bool have_end;
    char end_how[16];
    int end_code;
    int chromium_pid;

    char *profile; /* ROOT/s-... */

    /* Reading: rbuf[0, rlen) holds the unfinished message (at rstart) and, during one read
     * callback, complete ones before it; rscan is where the NUL search resumes. */
    char *rbuf;
    size_t rcap, rlen, rstart, rscan;
    size_t max_message;

    size_t high_wm, low_wm;
    bool drain_armed;
    uint64_t kill_timeout_ms;

    uint64_t t_launch_ns;
    int64_t spawn_us, first_message_us;
    uint64_t messages_in, bytes_in, messages_out, bytes_out, reads;
};

const char *browser_end_str(int status) {
    switch (status) {
    case BROWSER_END_CRASHED: return "crashed";
    case BROWSER_END_KILLED: return "killed";
    case BROWSER_END_LAUNCH_FAILED: return "launch_failed";
    case BROWSER_END_PROTOCOL_ERROR: return "protocol_error";
    case BROWSER_END_SUPERVISOR_LOST: return "supervisor_lost";
    default: return status >= 0 ? "exit" : "unknown";
    }
}

void browser_config_defaults(browser_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->chromium_path = BROWSER_DEFAULT_CHROMIUM;
    cfg->supervisor_path = "/proc/self/exe";
    cfg->write_high_watermark = (size_t)8 << 20;
    cfg->write_low_watermark = (size_t)1 << 20;
    cfg->max_message = BROWSER_MAX_MESSAGE;
    cfg->kill_timeout_ms = 10000;
}

int browser_temp_root_for(char *out, size_t cap, uid_t uid) {
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    int n = snprintf(out, cap, "%s/browserd-%u", tmp, (unsigned)uid);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int browser_default_temp_root(char *out, size_t cap) { return browser_temp_root_for(out, cap, geteuid()); }

size_t browser_base_args(const char *args[BROWSER_BASE_ARGS_MAX], bool as_root) {
    size_t n = 0;
    args[n++] = "--headless";
    /* Chromium refuses to run as root with its sandbox; as any other user the sandbox stays
     * (main.c warns at start when it will be off). */
    if (as_root) args[n++] = "--no-sandbox";
    args[n++] = "--disable-gpu";
    args[n++] = "--disable-quic";
    args[n++] = "--no-first-run";
    args[n++] = "--no-default-browser-check";
    /* Nothing that phones home: every request Chromium makes goes through the session's
     * traffic proxy and is billed to the session, so its own background requests would be
     * billed to the user (6-12 KB a session, measured with Chromium 156; docs/browser.md,
     * "Billing"). The switches stop what they can at the source. */
    args[n++] = "--disable-background-networking";
    args[n++] = "--disable-component-update";
    args[n++] = "--disable-sync";
    args[n++] = "--disable-extensions"; /* Debian's wrapper loads its own extensions otherwise */
    args[n++] = "--disable-default-apps";
    args[n++] = "--disable-component-extensions-with-background-pages";
    args[n++] = "--disable-client-side-phishing-detection";
    args[n++] = "--disable-domain-reliability";
    args[n++] = "--disable-breakpad";
    args[n++] = "--metrics-recording-only";
    args[n++] = "--no-pings";
    args[n++] = "--no-service-autorun";
    /* clients2.google.com/time (network time), optimizationguide-pa.googleapis.com (hints). */
    args[n++] = "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,OptimizationGuideModelDownloading,"
                "MediaRouter,Translate,AutofillServerCommunication";
    /* What no switch turns off: the account reconcilor's ListAccounts (accounts.google.com,
     * even with sign-in disallowed by preference and by policy) and on-demand component
     * installs (update.googleapis.com, even with --disable-component-update and the
     * ComponentUpdatesEnabled policy). Their servers are pointed at port 1 of loopback, a
     * port Chromium refuses to connect to (ERR_UNSAFE_PORT) before any proxy is asked, so
     * not one byte of them leaves the browser. */
    args[n++] = "--gaia-url=http://127.0.0.1:1";
    args[n++] = "--lso-url=http://127.0.0.1:1";
    args[n++] = "--google-apis-url=http://127.0.0.1:1";
    args[n++] = "--component-updater=url-source=http://127.0.0.1:1/";
    args[n++] = "--remote-debugging-pipe";
    return n;
}

/* ---- closing and reporting ---------------------------------------------------------------- */

static void report_end(browser_t *b) {
    int status, sig = 0;
    if (b->protocol_error) status = BROWSER_END_PROTOCOL_ERROR;
    else if (b->have_end && strcmp(b->end_how, "exit") == 0) status = b->end_code;
    else if (b->have_end && strcmp(b->end_how, "signal") == 0) {
        status = BROWSER_END_CRASHED;
        sig = b->end_code;
    } else if (b->have_end && strcmp(b->end_how, "killed") == 0) status = BROWSER_END_KILLED;
    else if (b->have_end) status = BROWSER_END_LAUNCH_FAILED;
    else if (b->killing) status = BROWSER_END_KILLED; /* we had to SIGKILL the supervisor */
    else {
        status = BROWSER_END_SUPERVISOR_LOST;
        sig = b->sup_term_signal;
    }
    b->exit_reported = true;
    if (b->freed) {
        free(b->profile);
        free(b);
        return;
    }
    if (b->cb.on_exit) b->cb.on_exit(b->ctx, status, sig); /* may browser_free(b) */
}

static void on_handle_closed(uv_handle_t *h) {
    browser_t *b = h->data;
    if (--b->handles_open == 0) report_end(b);
}

static void close_once(uv_handle_t *h, bool *closed) {
    if (*closed) return;
    *closed = true;
    uv_close(h, on_handle_closed);
}

static void free_read_buffer(browser_t *b) {
    free(b->rbuf);
    b->rbuf = NULL;
    b->rcap = b->rlen = b->rstart = b->rscan = 0;
}

static void fallback_work(uv_work_t *w) {
    browser_t *b = w->data;
    int rc = browser_profile_remove_when_unlocked(b->profile, FALLBACK_LOCK_WAIT_MS);
    log_event(LOG_WARN, "browser", "browser_fallback_cleanup", "dir=%s removed=%s", b->profile, rc == 0 ? "yes" : strerror(-rc));
}

static void maybe_finish(browser_t *b);

static void fallback_done(uv_work_t *w, int status) {
    (void)status;
    browser_t *b = w->data;
    b->fallback_done = true;
    maybe_finish(b);
}

static void maybe_finish(browser_t *b) {
    if (b->closing || !b->proc_exited || !b->status_eof) return;
    if (!b->have_end && !b->fallback_started) {
        /* The supervisor died without its promise ("end" line): Chromium's main process got
         * SIGKILL from its parent-death signal; finish off its group and delete the profile
         * ourselves. (The group id cannot have been reused while any member lived; once the
         * group is empty, a new process would have to get that very pid and make itself a
         * group leader within these milliseconds.) */
        b->fallback_started = true;
        log_event(LOG_WARN, "browser", "browser_supervisor_lost", "supervisor_pid=%d chromium_pid=%d exit_status=%d signal=%d",
                b->proc.pid, b->chromium_pid, b->sup_exit_status, b->sup_term_signal);
        if (b->chromium_pid > 0) kill(-b->chromium_pid, SIGKILL);
        b->work.data = b;
        if (uv_queue_work(b->loop, &b->work, fallback_work, fallback_done) < 0) b->fallback_done = true;
    }
    if (!b->cdp_eof && !b->killing) return; /* messages still to deliver */
    if (b->fallback_started && !b->fallback_done) return;
    b->closing = true;
    free_read_buffer(b);
    close_once((uv_handle_t *)&b->cdp_out, &b->out_closed);
    close_once((uv_handle_t *)&b->cdp_in, &b->in_closed);
    close_once((uv_handle_t *)&b->status, &b->status_closed);
    close_once((uv_handle_t *)&b->timer, &b->timer_closed);
    close_once((uv_handle_t *)&b->proc, &b->proc_closed);
}

static void on_kill_timeout(uv_timer_t *t) {
    browser_t *b = t->data;
    if (b->proc_exited) return;
    log_event(LOG_WARN, "browser", "browser_kill_timeout", "supervisor_pid=%d chromium_pid=%d", b->proc.pid, b->chromium_pid);
    uv_process_kill(&b->proc, SIGKILL);
}

void browser_kill(browser_t *b) {
    if (!b || b->killing) return;
    b->killing = true;
    /* Queued writes are dropped (their buffers freed by the cancelled callbacks) and no more
     * messages are delivered. */
    uv_read_stop((uv_stream_t *)&b->cdp_in);
    close_once((uv_handle_t *)&b->cdp_out, &b->out_closed);
    close_once((uv_handle_t *)&b->cdp_in, &b->in_closed);
    if (!b->proc_exited) {
        uv_process_kill(&b->proc, SIGTERM);
        uv_timer_start(&b->timer, on_kill_timeout, b->kill_timeout_ms, 0);
    }
    maybe_finish(b);
}

static void protocol_error(browser_t *b, const char *why) {
    log_event(LOG_WARN, "browser", "browser_protocol_error", "chromium_pid=%d reason=\"%s\"", b->chromium_pid, why);
    b->protocol_error = true;
    browser_kill(b);
}

/* ---- the status pipe -------------------------------------------------------------------- */

static void status_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    browser_t *b = h->data;
    /* A full line buffer can only mean garbage: drop it. */
    if (b->slen >= sizeof b->sline - 1) b->slen = 0;
    *buf = uv_buf_init(b->sline + b->slen, (unsigned)(sizeof b->sline - 1 - b->slen));
}

static void status_line(browser_t *b, char *line) {
    int n;
    char how[16];
    if (sscanf(line, "pid %d", &n) == 1 && n > 0) {
        b->chromium_pid = n;
        b->spawn_us = (int64_t)((uv_hrtime() - b->t_launch_ns) / 1000);
    } else if (sscanf(line, "end %15s %d", how, &n) == 2) {
        b->have_end = true;
        memcpy(b->end_how, how, sizeof how);
        b->end_code = n;
    }
}

static void status_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    browser_t *b = s->data;
    if (nread < 0) {
        uv_read_stop(s);
        b->status_eof = true;
        maybe_finish(b);
        return;
    }
    b->slen += (size_t)nread;
    b->sline[b->slen] = '\0';
    char *nl;
    while ((nl = memchr(b->sline, '\n', b->slen))) {
        *nl = '\0';
        status_line(b, b->sline);
        size_t used = (size_t)(nl + 1 - b->sline);
        memmove(b->sline, nl + 1, b->slen - used);
        b->slen -= used;
        b->sline[b->slen] = '\0';
    }
}

/* ---- the supervisor process --------------------------------------------------------------- */

static void on_proc_exit(uv_process_t *p, int64_t exit_status, int term_signal) {
    browser_t *b = p->data;
    b->proc_exited = true;
    b->sup_exit_status = (int)exit_status;
    b->sup_term_signal = term_signal;
    uv_timer_stop(&b->timer);
    maybe_finish(b);
}

/* ---- reading CDP messages ----------------------------------------------------------------- */

static void cdp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    browser_t *b = h->data;
    size_t limit = b->max_message + 1; /* the longest message and its NUL */
    if (b->rcap - b->rlen < READ_CHUNK && b->rcap < limit) {
        /* Geometric growth: a 256 MiB message costs ~12 reallocations, O(1) per byte; blocks
         * over glibc's mmap threshold grow with mremap, without copying at all. */
        size_t cap = b->rcap ? b->rcap * 2 : READ_CHUNK;
        if (cap < b->rlen + READ_CHUNK) cap = b->rlen + READ_CHUNK;
        if (cap > limit) cap = limit;
        char *nb = realloc(b->rbuf, cap);
        if (!nb) {
            *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
            return;
        }
        b->rbuf = nb;
        b->rcap = cap;
    }
    *buf = uv_buf_init(b->rbuf + b->rlen, (unsigned)(b->rcap - b->rlen));
}

/* Hands the message rbuf[rstart, end) to the callee and advances past its NUL. */
static int deliver(browser_t *b, size_t end) {
    size_t len = end - b->rstart;
    char *msg;
    if (b->rstart == 0 && len >= HANDOFF_MIN) {
        /* The read buffer becomes the message; what follows its NUL moves to a new buffer. */
        size_t rest = b->rlen - (end + 1);
        size_t cap = rest + READ_CHUNK;
        char *nb = malloc(cap);
        if (!nb) return -ENOMEM;
        memcpy(nb, b->rbuf + end + 1, rest);
        msg = b->rbuf;
        char *shrunk = realloc(msg, len + 1); /* in place (mremap) for large blocks */
        if (shrunk) msg = shrunk;
        b->rbuf = nb;
        b->rcap = cap;
        b->rlen = rest;
        b->rstart = b->rscan = 0;
    } else {
        msg = malloc(len + 1);
        if (!msg) return -ENOMEM;
        memcpy(msg, b->rbuf + b->rstart, len + 1); /* the NUL included */
        b->rstart = b->rscan = end + 1;
    }
    b->messages_in++;
    if (b->first_message_us < 0) b->first_message_us = (int64_t)((uv_hrtime() - b->t_launch_ns) / 1000);
    if (b->cb.on_message) b->cb.on_message(b->ctx, msg, len);
    else free(msg);
    return 0;
}

static void cdp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    browser_t *b = s->data;
    if (nread == 0 || b->killing) return;
    if (nread < 0) {
        uv_read_stop(s);
        if (nread == UV_EOF) {
            if (b->rlen > b->rstart)
                log_event(LOG_WARN, "browser", "browser_truncated_message", "chromium_pid=%d bytes=%zu", b->chromium_pid,
                        b->rlen - b->rstart);
            b->cdp_eof = true;
            free_read_buffer(b);
            maybe_finish(b);
        } else if (nread == UV_ENOBUFS) {
            protocol_error(b, "out of memory for a message");
        } else {
            protocol_error(b, uv_strerror((int)nread));
        }
        return;
    }
    b->rlen += (size_t)nread;
    b->bytes_in += (uint64_t)nread;
    b->reads++;
    for (;;) {
        char *nul = memchr(b->rbuf + b->rscan, '\0', b->rlen - b->rscan);
        if (!nul) {
            b->rscan = b->rlen;
            break;
        }
        if (deliver(b, (size_t)(nul - b->rbuf)) < 0) {
            protocol_error(b, "out of memory for a message");
            return;
        }
        if (b->killing) return; /* the callee killed or freed the browser */
    }
    size_t partial = b->rlen - b->rstart;
    if (partial > b->max_message) {
        protocol_error(b, "message too long");
        return;
    }
    if (b->rstart > 0) {
        memmove(b->rbuf, b->rbuf + b->rstart, partial);
        b->rlen = partial;
        b->rscan -= b->rstart;
        b->rstart = 0;
    }
}

void browser_pause_reading(browser_t *b) {
    if (b->paused) return;
    b->paused = true;
    if (!b->killing && !b->cdp_eof) uv_read_stop((uv_stream_t *)&b->cdp_in);
}

void browser_resume_reading(browser_t *b) {
    if (!b->paused) return;
    b->paused = false;
    if (!b->killing && !b->cdp_eof) uv_read_start((uv_stream_t *)&b->cdp_in, cdp_alloc, cdp_read);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void on_written(uv_write_t *req, int status) {
    write_req_t *w = (write_req_t *)req;
    browser_t *b = w->b;
    free(w->msg);
    free(w);
    /* A failed write (EPIPE: Chromium is gone) needs nothing here: its exit follows. */
    (void)status;
    if (b->drain_armed && !b->killing && !b->closing && b->cdp_out.write_queue_size <= b->low_wm) {
        b->drain_armed = false;
        if (b->cb.on_drain) b->cb.on_drain(b->ctx);
    }
}

int64_t browser_send(browser_t *b, char *msg, size_t len) {
    static char nul = '\0';
    if (b->killing || b->proc_exited || b->out_closed) {
        free(msg);
        return -EPIPE;
    }
    if (len > UINT32_MAX) { /* uv_buf_t's length is an unsigned int */
        free(msg);
        return -EMSGSIZE;
    }
    write_req_t *w = malloc(sizeof *w);
    if (!w) {
        free(msg);
        return -ENOMEM;
    }
    w->b = b;
    w->msg = msg;
    uv_buf_t bufs[2] = {uv_buf_init(msg, (unsigned)len), uv_buf_init(&nul, 1)};
    int rc = uv_write(&w->req, (uv_stream_t *)&b->cdp_out, bufs, 2, on_written);
    if (rc < 0) {
        free(msg);
        free(w);
        return rc;
    }
    b->messages_out++;
    b->bytes_out += len + 1;
    size_t queued = b->cdp_out.write_queue_size;
    if (queued > b->high_wm) b->drain_armed = true;
    return (int64_t)queued;
}

size_t browser_write_queue_size(const browser_t *b) {
    return b->out_closed ? 0 : b->cdp_out.write_queue_size;
}

/* ---- launch ------------------------------------------------------------------------------- */

static void launch_failed_closed(uv_handle_t *h) {
    browser_t *b = h->data;
    if (--b->handles_open == 0) {
        free(b->profile);
        free(b);
    }
}

int browser_launch(uv_loop_t *loop, const browser_config_t *cfg_in, const browser_callbacks_t *cb, void *ctx,
                   browser_t **out) {
    *out = NULL;
    browser_config_t cfg;
    browser_config_defaults(&cfg);
    if (cfg_in) {
        if (cfg_in->chromium_path) cfg.chromium_path = cfg_in->chromium_path;
        cfg.extra_args = cfg_in->extra_args;
        cfg.extra_arg_count = cfg_in->extra_arg_count;
        cfg.temp_root = cfg_in->temp_root;
        if (cfg_in->supervisor_path) cfg.supervisor_path = cfg_in->supervisor_path;
        if (cfg_in->write_high_watermark) cfg.write_high_watermark = cfg_in->write_high_watermark;
        if (cfg_in->write_low_watermark) cfg.write_low_watermark = cfg_in->write_low_watermark;
        if (cfg_in->max_message && cfg_in->max_message < BROWSER_MAX_MESSAGE) cfg.max_message = cfg_in->max_message;
        if (cfg_in->kill_timeout_ms) cfg.kill_timeout_ms = cfg_in->kill_timeout_ms;
        cfg.chromium_stderr = cfg_in->chromium_stderr;
        cfg.run_as = cfg_in->run_as;
        cfg.run_uid = cfg_in->run_uid;
        cfg.run_gid = cfg_in->run_gid;
    }
    if (cfg.run_as && geteuid() != 0) return -EPERM;
    if (cfg.chromium_path[0] != '/' || (cfg.extra_arg_count && !cfg.extra_args)) return -EINVAL;
    for (size_t i = 0; i < cfg.extra_arg_count; i++) {
        /* The pipe is the only way in (a debugging port would be open to every local user), and
         * the profile is ours to create and delete. */
        const char *a = cfg.extra_args[i];
        if (!a || strncmp(a, "--remote-debugging-", 19) == 0 || strncmp(a, "--user-data-dir", 15) == 0)
            return -EINVAL;
    }
    if (cfg.write_low_watermark > cfg.write_high_watermark) return -EINVAL;

    char root[4096], name[BROWSER_PROFILE_NAME_LEN + 1];
    int rc;
    if (cfg.temp_root) {
        if (snprintf(root, sizeof root, "%s", cfg.temp_root) >= (int)sizeof root) return -ENAMETOOLONG;
    } else if ((rc = browser_temp_root_for(root, sizeof root, cfg.run_as ? cfg.run_uid : geteuid())) < 0) {
        return rc;
    }
    if ((rc = browser_profile_new_name(name, sizeof name)) < 0) return rc;

    browser_t *b = calloc(1, sizeof *b);
    char **args = NULL;
    char *user_data = NULL;
    if (!b) return -ENOMEM;
    b->loop = loop;
    if (cb) b->cb = *cb;
    b->ctx = ctx;
    b->max_message = cfg.max_message;
    b->high_wm = cfg.write_high_watermark;
    b->low_wm = cfg.write_low_watermark;
    b->kill_timeout_ms = cfg.kill_timeout_ms;
    b->spawn_us = b->first_message_us = -1;
    size_t plen = strlen(root) + 1 + sizeof name;
    b->profile = malloc(plen);
    user_data = malloc(plen + 32);
    args = calloc(16 + BROWSER_BASE_ARGS_MAX + cfg.extra_arg_count, sizeof *args);
    if (!b->profile || !user_data || !args) {
        rc = -ENOMEM;
        goto fail_early;
    }
    snprintf(b->profile, plen, "%s/%s", root, name);
    snprintf(user_data, plen + 32, "--user-data-dir=%s/data", b->profile);
    char parent[24];
    snprintf(parent, sizeof parent, "%d", (int)getpid());

    size_t n = 0;
    args[n++] = "browserd";
    args[n++] = BROWSER_SUPERVISOR_COMMAND;
    args[n++] = "--parent";
    args[n++] = parent;
    args[n++] = "--profile";
    args[n++] = b->profile;
    if (cfg.chromium_stderr) args[n++] = "--chromium-stderr";
    args[n++] = "--";
    args[n++] = (char *)cfg.chromium_path;
    const char *base[BROWSER_BASE_ARGS_MAX];
    size_t nbase = browser_base_args(base, cfg.run_as ? cfg.run_uid == 0 : geteuid() == 0);
    for (size_t i = 0; i < nbase; i++) args[n++] = (char *)base[i];
    args[n++] = user_data;
    for (size_t i = 0; i < cfg.extra_arg_count; i++) args[n++] = (char *)cfg.extra_args[i];
    /* The first page: without one Chromium opens its New Tab page, a WebUI page that costs a
     * launch ~16 % more CPU (measured 728 vs 614 ms over a browser's first 2 s), and on a small
     * machine launches are what limits how fast sessions can start. Puppeteer's own launch
     * starts on about:blank too. */
    args[n++] = "about:blank";
    args[n] = NULL;

    uv_pipe_init(loop, &b->cdp_out, 0);
    uv_pipe_init(loop, &b->cdp_in, 0);
    uv_pipe_init(loop, &b->status, 0);
    uv_timer_init(loop, &b->timer);
    b->proc.data = b->cdp_out.data = b->cdp_in.data = b->status.data = b->timer.data = b;
    b->handles_open = 5;

    /* Flags are from the child's point of view; libuv makes each a socketpair, whose child
     * end stays blocking (Chromium's pipe reader expects that) while ours is non-blocking. */
    uv_stdio_container_t stdio[6];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[SUPERVISOR_CDP_IN_FD].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[SUPERVISOR_CDP_IN_FD].data.stream = (uv_stream_t *)&b->cdp_out;
    stdio[SUPERVISOR_CDP_OUT_FD].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[SUPERVISOR_CDP_OUT_FD].data.stream = (uv_stream_t *)&b->cdp_in;
    stdio[SUPERVISOR_STATUS_FD].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[SUPERVISOR_STATUS_FD].data.stream = (uv_stream_t *)&b->status;
    uv_process_options_t opt = {
        .exit_cb = on_proc_exit,
        .file = cfg.supervisor_path,
        .args = args,
        .stdio = stdio,
        .stdio_count = 6,
        /* A session of its own (setsid): a Ctrl-C or hangup meant for browserd's terminal must
         * not end every browser behind browserd's back; browserd ends them (browser_kill) or its
         * death does (the parent-death signal, which does not care about sessions). */
        .flags = UV_PROCESS_DETACHED,
    };
    if (cfg.run_as) { /* libuv clears the supplementary groups before setgid and setuid */
        opt.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        opt.uid = cfg.run_uid;
        opt.gid = cfg.run_gid;
    }
    b->t_launch_ns = uv_hrtime();
    rc = uv_spawn(loop, &b->proc, &opt);
    free(args);
    free(user_data);
    if (rc < 0) {
        log_event(LOG_ERROR, "browser", "browser_launch_failed", "supervisor=%s error=\"%s\"", cfg.supervisor_path, uv_strerror(rc));
        /* Every handle is initialized (libuv wants a failed process handle closed too); the
         * memory goes with the last close callback. */
        uv_close((uv_handle_t *)&b->proc, launch_failed_closed);
        uv_close((uv_handle_t *)&b->cdp_out, launch_failed_closed);
        uv_close((uv_handle_t *)&b->cdp_in, launch_failed_closed);
        uv_close((uv_handle_t *)&b->status, launch_failed_closed);
        uv_close((uv_handle_t *)&b->timer, launch_failed_closed);
        return rc;
    }
    uv_read_start((uv_stream_t *)&b->status, status_alloc, status_read);
    uv_read_start((uv_stream_t *)&b->cdp_in, cdp_alloc, cdp_read);
    *out = b;
    return 0;

fail_early:
    free(args);
    free(user_data);
    free(b->profile);
    free(b);
    return rc;
}

/* ---- the rest ----------------------------------------------------------------------------- */

void browser_set_callbacks(browser_t *b, const browser_callbacks_t *cb, void *ctx) {
    if (cb) b->cb = *cb;
    else memset(&b->cb, 0, sizeof b->cb);
    b->ctx = ctx;
}

void browser_free(browser_t *b) {
    if (!b) return;
    if (b->exit_reported) {
        free(b->profile);
        free(b);
        return;
    }
    b->freed = true;
    memset(&b->cb, 0, sizeof b->cb);
    browser_kill(b);
}

int browser_pid(const browser_t *b) { return b->chromium_pid; }
int browser_supervisor_pid(const browser_t *b) { return b->proc.pid; }
const char *browser_profile_dir(const browser_t *b) { return b->profile; }
bool browser_exited(const browser_t *b) { return b->exit_reported; }
bool browser_alive(const browser_t *b) { return !b->killing && !b->proc_exited && !b->cdp_eof && !b->closing; }

void browser_get_stats(const browser_t *b, browser_stats_t *out) {
    out->spawn_us = b->spawn_us;
    out->first_message_us = b->first_message_us;
    out->messages_in = b->messages_in;
    out->bytes_in = b->bytes_in;
    out->messages_out = b->messages_out;
    out->bytes_out = b->bytes_out;
    out->reads = b->reads;
}
