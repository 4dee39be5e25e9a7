/* The browser module and the warm pool, with the real Chromium (/usr/bin/chromium, or
 * BROWSERD_TEST_CHROMIUM). The loop runs on the test thread; callbacks only record what
 * happened, the assertions come after run_until. This binary is also its own supervisor: main()
 * dispatches `__browser-supervisor` exactly as browserd's does, and the default
 * supervisor_path (/proc/self/exe) re-executes it.
 *
 * Nothing is left behind even when a test fails: every test's teardown SIGKILLs every process
 * group and supervisor it recorded and every process whose command line names this run's temp
 * root, and the run's temp directory is removed at the end.
 *
 * The splitter (messages in reads) is also tested without Chromium, on browser.c's statics. */
#include "../../../src/cdp/browser.c"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "cdp/browser_pool.h"
#include "cdp/browser_profile.h"
#include "cdp/cdp_scan.h"

#define BIG_MESSAGE ((size_t)50 << 20)

static uv_loop_t loop;
static char base_dir[64];   /* this run's temp directory */
static char temp_root[128]; /* base_dir/profiles: the browsers' temp root */
static const char *chromium = BROWSER_DEFAULT_CHROMIUM;
static bool tearing_down;

/* ---- what the test remembers about its browsers ------------------------------------------ */

typedef struct {
    char *p;
    size_t len;
} msg_t;

typedef struct {
    browser_t *b;
    msg_t *msgs;
    size_t n, cap;
    bool exited;
    int status, sig;
    size_t n_at_exit; /* messages delivered before on_exit */
    int drains;
    char profile[256];
} tb_t;

#define MAX_TB 8
static tb_t tbs[MAX_TB];
static int n_tb;
/* Every pid this run started, for the teardown's safety net. */
static pid_t known_pids[256];
static int n_known;
static pid_t fork_child; /* test_parent_sigkill's "browserd", until reaped */

static void remember_pid(pid_t pid) {
    for (int i = 0; i < n_known; i++)
        if (known_pids[i] == pid) return;
    if (pid > 0 && n_known < (int)(sizeof known_pids / sizeof known_pids[0])) known_pids[n_known++] = pid;
}

static void tb_on_message(void *ctx, char *msg, size_t len) {
    tb_t *t = ctx;
    if (tearing_down) {
        free(msg);
        return;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->msgs = realloc(t->msgs, t->cap * sizeof *t->msgs);
    }
    t->msgs[t->n++] = (msg_t){msg, len};
}

static void tb_on_exit(void *ctx, int status, int sig) {
    tb_t *t = ctx;
    if (tearing_down) return;
    t->exited = true;
    t->n_at_exit = t->n;
    t->status = status;
    t->sig = sig;
}

static void tb_on_drain(void *ctx) {
    tb_t *t = ctx;
    if (!tearing_down) t->drains++;
}

static const browser_callbacks_t tb_cb = {tb_on_message, tb_on_exit, tb_on_drain};

static browser_config_t test_config(void) {
    browser_config_t cfg;
    browser_config_defaults(&cfg);
    cfg.chromium_path = chromium;
    cfg.temp_root = temp_root;
    return cfg;
}

static tb_t *tb_new(void) {
    assert_true(n_tb < MAX_TB);
    tb_t *t = &tbs[n_tb++];
    memset(t, 0, sizeof *t);
    return t;
}

static tb_t *launch_with(const browser_config_t *cfg) {
    tb_t *t = tb_new();
    assert_int_equal(browser_launch(&loop, cfg, &tb_cb, t, &t->b), 0);
    remember_pid(browser_supervisor_pid(t->b));
    snprintf(t->profile, sizeof t->profile, "%s", browser_profile_dir(t->b));
    return t;
}

static tb_t *launch(void) {
    browser_config_t cfg = test_config();
    return launch_with(&cfg);
}

static void send_str(browser_t *b, const char *s) {
    char *m = strdup(s);
    assert_non_null(m);
    assert_true(browser_send(b, m, strlen(s)) >= 0);
}

/* ---- running the loop ---------------------------------------------------------------------- */

static bool deadline_hit;
static void on_deadline(uv_timer_t *t) {
    deadline_hit = true;
    uv_stop(t->loop);
}
static void on_tick(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop until cond(arg) or timeout_ms; the condition is checked after every event and
 * at least every 10 ms (for conditions on processes and files). */
static bool run_until(bool (*cond)(void *), void *arg, int timeout_ms) {
    uv_timer_t deadline, tick;
    uv_timer_init(&loop, &deadline);
    uv_timer_init(&loop, &tick);
    deadline_hit = false;
    uv_timer_start(&deadline, on_deadline, (uint64_t)timeout_ms, 0);
    uv_timer_start(&tick, on_tick, 10, 10);
    while (!cond(arg) && !deadline_hit) uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT); /* the close callbacks */
    return cond(arg);
}

static bool never(void *arg) {
    (void)arg;
    return false;
}
static void run_for(int ms) { run_until(never, NULL, ms); }

static bool tb_is_exited(void *arg) { return ((tb_t *)arg)->exited; }

static int find_reply(tb_t *t, int64_t id) {
    for (size_t i = 0; i < t->n; i++) {
        cdp_msg_t m;
        if (cdp_scan(t->msgs[i].p, t->msgs[i].len, &m) == 0 && m.id_is_int && m.id == id) return (int)i;
    }
    return -1;
}

typedef struct {
    tb_t *t;
    int64_t id;
} reply_wait_t;
static bool has_reply(void *arg) {
    reply_wait_t *w = arg;
    return find_reply(w->t, w->id) >= 0 || w->t->exited;
}

/* Waits for the reply with this id; returns its index in t->msgs. */
static int wait_reply(tb_t *t, int64_t id, int timeout_ms) {
    reply_wait_t w = {t, id};
    run_until(has_reply, &w, timeout_ms);
    int i = find_reply(t, id);
    if (i < 0) print_error("no reply with id %lld (exited=%d status=%d)\n", (long long)id, t->exited, t->status);
    assert_true(i >= 0);
    return i;
}

/* A string member of a reply's "result", copied into out. */
static void result_string(tb_t *t, int idx, const char *key, char *out, size_t cap) {
    cdp_msg_t m;
    assert_int_equal(cdp_scan(t->msgs[idx].p, t->msgs[idx].len, &m), 0);
    assert_non_null(m.result.ptr);
    cdp_value_t v;
    assert_int_equal(cdp_object_get(m.result.ptr, m.result.len, key, strlen(key), &v), 0);
    assert_int_equal(v.type, CDP_T_STRING);
    assert_true(v.str.len < cap);
    memcpy(out, v.str.ptr, v.str.len);
    out[v.str.len] = '\0';
}

static void launch_ready(tb_t **out) {
    tb_t *t = launch();
    send_str(t->b, "{\"id\":1,\"method\":\"Browser.getVersion\"}");
    int i = wait_reply(t, 1, 20000);
    assert_non_null(strstr(t->msgs[i].p, "\"product\":\"Chrome/"));
    assert_true(browser_pid(t->b) > 0);
    remember_pid(browser_pid(t->b));
    *out = t;
}

/* ---- looking at processes and files -------------------------------------------------------- */

/* Processes (zombies included) in process group pgid, or (needle) whose command line contains
 * needle. */
static int count_procs(pid_t pgid, const char *needle) {
    DIR *d = opendir("/proc");
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid()) continue;
        char path[64], buf[8192];
        if (pgid > 0) {
            snprintf(path, sizeof path, "/proc/%ld/stat", pid);
            FILE *f = fopen(path, "re");
            if (!f) continue;
            size_t r = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[r] = '\0';
            char *rp = strrchr(buf, ')');
            char state;
            int ppid, pg;
            if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pg) == 3 && pg == pgid) {
                /* We are a subreaper (see main), so when a supervisor is SIGKILLed its orphans
                 * come to us, not to init: reap them as init would. Never our own group's
                 * children: those are libuv's supervisors. */
                if (state == 'Z' && ppid == getpid() && pg != getpgrp() && waitpid((pid_t)pid, NULL, WNOHANG) == pid)
                    continue;
                n++;
            }
        }
        if (needle) {
            snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            ssize_t r = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (r <= 0) continue;
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] == '\0') buf[i] = ' ';
            buf[r] = '\0';
            if (strstr(buf, needle)) n++;
        }
    }
    closedir(d);
    return n;
}

static bool path_exists(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0;
}

typedef struct {
    pid_t pgid;
    const char *profile;
} gone_t;
static bool all_gone(void *arg) {
    gone_t *g = arg;
    return count_procs(g->pgid, NULL) == 0 && count_procs(0, g->profile) == 0 && !path_exists(g->profile);
}

/* After an end: Chromium's group is empty, no process names the profile, the profile is gone
 * (within 15 s: a bound for a loaded machine under ASan, not a timing goal). */
static void assert_nothing_left(pid_t pgid, const char *profile) {
    gone_t g = {pgid, profile};
    bool ok = run_until(all_gone, &g, 15000);
    if (!ok)
        print_error("left behind: group %d has %d, %d name %s, profile %s\n", (int)pgid, count_procs(pgid, NULL),
                    count_procs(0, profile), profile, path_exists(profile) ? "exists" : "gone");
    assert_true(ok);
}

/* ---- fixture ------------------------------------------------------------------------------ */

static void stop_test_pool(void);

static void kill_pids_naming(const char *needle) {
    DIR *d = opendir("/proc");
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid()) continue;
        char path[64], buf[8192];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (r <= 0) continue;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] == '\0') buf[i] = ' ';
        buf[r] = '\0';
        if (strstr(buf, needle)) {
            fprintf(stderr, "teardown: killing leftover %ld: %.120s\n", pid, buf);
            kill((pid_t)pid, SIGKILL);
        }
    }
    closedir(d);
}

static int setup(void **state) {
    (void)state;
    tearing_down = false;
    n_tb = 0;
    return uv_loop_init(&loop);
}

static void close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* SIGKILL to group pgid, only if it is still one of ours (a member runs Chromium or names this
 * run's temp root): a recorded pid may have been reused by an unrelated process since. */
static void kill_group_if_ours(pid_t pgid) {
    DIR *d = opendir("/proc");
    if (!d) return;
    bool ours = false;
    struct dirent *de;
    while (!ours && (de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || getpgid((pid_t)pid) != pgid) continue;
        char path[64], buf[8192];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (r <= 0) continue;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] == '\0') buf[i] = ' ';
        buf[r] = '\0';
        ours = strstr(buf, temp_root) || strstr(buf, "/usr/lib/chromium/");
    }
    closedir(d);
    if (ours) {
        fprintf(stderr, "teardown: killing leftover group %d\n", (int)pgid);
        kill(-pgid, SIGKILL);
    }
}

static int teardown(void **state) {
    (void)state;
    stop_test_pool();
    /* The safety net: whatever the test did or failed to do, nothing of it may survive. */
    for (int i = 0; i < n_tb; i++)
        if (tbs[i].b && !tbs[i].exited) remember_pid(browser_pid(tbs[i].b));
    if (fork_child > 0) {
        kill(fork_child, SIGKILL);
        waitpid(fork_child, NULL, 0);
        fork_child = 0;
    }
    for (int i = 0; i < n_known; i++) kill_group_if_ours(known_pids[i]);
    n_known = 0;
    kill_pids_naming(temp_root);
    /* Let every browser still open see its supervisor's end, so its handles close normally. */
    for (int i = 0; i < n_tb; i++)
        if (tbs[i].b && !tbs[i].exited) run_until(tb_is_exited, &tbs[i], 3000);
    tearing_down = true;
    uv_walk(&loop, close_any, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    for (int i = 0; i < n_tb; i++) {
        if (tbs[i].exited) browser_free(tbs[i].b);
        for (size_t k = 0; k < tbs[i].n; k++) free(tbs[i].msgs[k].p);
        free(tbs[i].msgs);
        tbs[i].msgs = NULL;
    }
    n_tb = 0;
    /* Orphans reparented to us (we are a subreaper, see main). */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    return rc == 0 ? 0 : -1;
}

/* ---- the splitter, without Chromium ------------------------------------------------------- */

typedef struct {
    browser_t b;
    msg_t got[16];
    int n;
    char *handoff_expect; /* a buffer expected to be handed over as is */
} split_t;

static void split_on_message(void *ctx, char *msg, size_t len) {
    split_t *s = ctx;
    assert_true(s->n < 16);
    s->got[s->n++] = (msg_t){msg, len};
}

static void split_init(split_t *s) {
    memset(s, 0, sizeof *s);
    s->b.cdp_in.data = &s->b;
    s->b.max_message = BROWSER_MAX_MESSAGE;
    s->b.first_message_us = -1;
    s->b.cb.on_message = split_on_message;
    s->b.ctx = s;
}

/* Feeds bytes the way libuv does: into the buffer cdp_alloc offers, at most chunk per read. */
static void split_feed(split_t *s, const char *data, size_t n, size_t chunk) {
    while (n > 0) {
        uv_buf_t buf;
        cdp_alloc((uv_handle_t *)&s->b.cdp_in, 65536, &buf);
        size_t k = n < chunk ? n : chunk;
        if (k > buf.len) k = buf.len;
        memcpy(buf.base, data, k);
        cdp_read((uv_stream_t *)&s->b.cdp_in, (ssize_t)k, &buf);
        data += k;
        n -= k;
    }
}

static void split_free(split_t *s) {
    for (int i = 0; i < s->n; i++) free(s->got[i].p);
    free(s->b.rbuf);
}

static void test_split_several_in_one_read(void **state) {
    (void)state;
    split_t s;
    split_init(&s);
    split_feed(&s, "{\"a\":1}\0{}\0\0{\"b\":2", 18, 1 << 20);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.got[0].len, 7);
    assert_string_equal(s.got[0].p, "{\"a\":1}");
    assert_string_equal(s.got[1].p, "{}");
    assert_int_equal(s.got[2].len, 0);
    assert_int_equal(s.b.rlen, 6); /* the unfinished {"b":2 moved to the front */
    assert_memory_equal(s.b.rbuf, "{\"b\":2", 6);
    split_feed(&s, "}\0", 2, 1 << 20);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.got[3].p, "{\"b\":2}");
    assert_int_equal(s.b.messages_in, 4);
    split_free(&s);
}

static void test_split_byte_by_byte(void **state) {
    (void)state;
    split_t s;
    split_init(&s);
    const char in[] = "{\"id\":1}\0{\"id\":2}"; /* the second NUL is the literal's */
    split_feed(&s, in, sizeof in, 1);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.got[0].p, "{\"id\":1}");
    assert_string_equal(s.got[1].p, "{\"id\":2}");
    assert_int_equal(s.b.rlen, 0);
    split_free(&s);
}

/* A large message is handed over in the read buffer itself; what followed it in the same read
 * is kept for the next message. */
static void test_split_large_message_handed_over(void **state) {
    (void)state;
    split_t s;
    split_init(&s);
    size_t big = (size_t)3 << 20;
    char *data = malloc(big + 16);
    assert_non_null(data);
    memset(data, 'x', big);
    memcpy(data + big, "\0{\"n\":1}\0{\"n", 13);
    split_feed(&s, data, big - 100, 1 << 20);
    assert_int_equal(s.n, 0);
    assert_true(s.b.rcap >= big - 100);
    /* The end of the big one and two more messages (one unfinished) in one read. */
    char *before = s.b.rbuf;
    split_feed(&s, data + big - 100, 100 + 12, 1 << 20);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.got[0].len, big);
#if !defined(__SANITIZE_ADDRESS__)
    /* Not copied: the read buffer itself, trimmed by realloc, which glibc does in place
     * (ASan's realloc always moves, hence the #if). */
    assert_ptr_equal(s.got[0].p, before);
#else
    (void)before;
#endif
    assert_true(s.got[0].p[big] == '\0');
    for (size_t i = 0; i < big; i++)
        if (s.got[0].p[i] != 'x') fail_msg("byte %zu", i);
    assert_string_equal(s.got[1].p, "{\"n\":1}");
    assert_int_equal(s.b.rlen, 3);
    assert_true(s.b.rcap < (size_t)1 << 20); /* a fresh small buffer, not the big one */
    free(data);
    split_free(&s);
}

/* ---- Chromium ----------------------------------------------------------------------------- */

static void test_launch_version_kill(void **state) {
    (void)state;
    char sentinel[128];
    snprintf(sentinel, sizeof sentinel, "%s/sentinel", base_dir);
    int leak = open(sentinel, O_WRONLY | O_CREAT, 0600); /* deliberately inheritable */
    assert_true(leak >= 0);
    tb_t *t;
    launch_ready(&t);
    close(leak);
    pid_t pid = browser_pid(t->b);
    browser_stats_t st;
    browser_get_stats(t->b, &st);
    fprintf(stderr, "measure: launch: spawn %.1f ms, first answer on the pipe %.1f ms\n", st.spawn_us / 1000.0,
            st.first_message_us / 1000.0);
    assert_true(st.spawn_us > 0 && st.first_message_us >= st.spawn_us);
    /* Its one page is about:blank (not the New Tab page, which costs every launch more CPU). */
    send_str(t->b, "{\"id\":7,\"method\":\"Target.getTargets\"}");
    int gi = wait_reply(t, 7, 10000);
    assert_non_null(strstr(t->msgs[gi].p, "\"type\":\"page\""));
    assert_non_null(strstr(t->msgs[gi].p, "\"url\":\"about:blank\""));
    assert_null(strstr(t->msgs[gi].p, "new-tab-page"));

    /* The profile exists with its layout, locked; Chromium leads its own group, and its helpers
     * (zygotes, utilities, renderers) are in it. */
    char p[512];
    run_for(200);
    assert_true(path_exists(t->profile));
    snprintf(p, sizeof p, "%s/home/.config", t->profile);
    assert_true(path_exists(p));
    assert_true(browser_alive(t->b));
    assert_int_equal(getpgid(pid), pid);
    int in_group = count_procs(pid, NULL);
    fprintf(stderr, "measure: processes in Chromium's group: %d\n", in_group);
    assert_true(in_group >= 3);
    /* Everything Chromium writes outside --user-data-dir lands in the profile too: crashpad's
     * database (under HOME) and the singleton socket directory (under TMPDIR). */
    char needle[600];
    snprintf(needle, sizeof needle, "--database=%s/home/.config/chromium/Crash Reports", t->profile);
    assert_true(count_procs(0, needle) >= 1);
    snprintf(p, sizeof p, "%s/tmp", t->profile);
    DIR *d = opendir(p);
    assert_non_null(d);
    struct dirent *de;
    int singleton = 0;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, "org.chromium.Chromium.", 22) == 0) singleton++;
    closedir(d);
    assert_int_equal(singleton, 1);
    /* Chromium got the pipe (fds 3 and 4, sockets) and nothing of ours: not the sentinel the
     * launch test left open without O_CLOEXEC. */
    for (int k = 0; k < 256; k++) {
        char fdp[64], target[512];
        snprintf(fdp, sizeof fdp, "/proc/%d/fd/%d", (int)pid, k);
        ssize_t r = readlink(fdp, target, sizeof target - 1);
        if (r < 0) continue;
        target[r] = '\0';
        if (k == 3 || k == 4) assert_true(strncmp(target, "socket:", 7) == 0);
        if (strstr(target, "sentinel")) fail_msg("fd %d of Chromium is %s", k, target);
    }
    int fd = open(t->profile, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1); /* held by the supervisor */
    close(fd);
    assert_int_equal(browser_profile_cleanup_stale(temp_root), 0); /* a live profile is not stale */
    assert_true(path_exists(t->profile));

    uint64_t t0 = uv_hrtime();
    browser_kill(t->b);
    browser_kill(t->b); /* idempotent */
    assert_true(browser_send(t->b, strdup("{}"), 2) == -EPIPE);
    assert_false(browser_alive(t->b));
    assert_true(run_until(tb_is_exited, t, 10000));
    fprintf(stderr, "measure: browser_kill -> on_exit (all dead, profile deleted): %.0f ms\n",
            (double)(uv_hrtime() - t0) / 1e6);
    assert_int_equal(t->status, BROWSER_END_KILLED);
    assert_int_equal(t->sig, 0);
    assert_true(browser_exited(t->b));
    assert_nothing_left(pid, t->profile);
}

/* 50 MB through the pipe both ways: a 50 MB command to Chromium (a padded Browser.getVersion:
 * the browser parses it, as any command), then 50 MB from Chromium (Runtime.evaluate of
 * 'x'.repeat(50 MiB) by value: the reply carries the whole string). One 50 MB string both ways
 * in a single Runtime.evaluate works too, but costs Chromium 8-10 s on this machine (V8 compiles
 * a 50 MB literal); the pipe is the same either way. */
static void test_big_message_round_trip(void **state) {
    (void)state;
    tb_t *t;
    launch_ready(&t);

    static const char head[] = "{\"id\":2,\"method\":\"Browser.getVersion\",\"params\":{\"pad\":\"";
    size_t hl = sizeof head - 1, len = hl + BIG_MESSAGE + 3;
    char *msg = malloc(len);
    assert_non_null(msg);
    memcpy(msg, head, hl);
    memset(msg + hl, 'p', BIG_MESSAGE);
    memcpy(msg + hl + BIG_MESSAGE, "\"}}", 3);
    uint64_t t0 = uv_hrtime();
    int64_t queued = browser_send(t->b, msg, len);
    /* The kernel took a few hundred KB at most: the rest waits, over the high watermark. */
    assert_true(queued > (int64_t)(8u << 20));
    assert_int_equal(browser_write_queue_size(t->b), (size_t)queued);
    wait_reply(t, 2, 15000);
    fprintf(stderr, "measure: 50 MB to Chromium and its reply: %.0f ms\n", (double)(uv_hrtime() - t0) / 1e6);
    assert_int_equal(t->drains, 1); /* once, when the queue fell to the low watermark */
    assert_int_equal(browser_write_queue_size(t->b), 0);

    send_str(t->b, "{\"id\":3,\"method\":\"Target.createTarget\",\"params\":{\"url\":\"about:blank\"}}");
    char target[64], session[64], cmd[256];
    result_string(t, wait_reply(t, 3, 10000), "targetId", target, sizeof target);
    snprintf(cmd, sizeof cmd,
             "{\"id\":4,\"method\":\"Target.attachToTarget\",\"params\":{\"targetId\":\"%s\",\"flatten\":true}}", target);
    send_str(t->b, cmd);
    result_string(t, wait_reply(t, 4, 10000), "sessionId", session, sizeof session);
    snprintf(cmd, sizeof cmd,
             "{\"id\":5,\"sessionId\":\"%s\",\"method\":\"Runtime.evaluate\",\"params\":{\"returnByValue\":true,"
             "\"expression\":\"'x'.repeat(%zu)\"}}",
             session, BIG_MESSAGE);
    t0 = uv_hrtime();
    browser_stats_t s0, s1;
    browser_get_stats(t->b, &s0);
    send_str(t->b, cmd);
    int i = wait_reply(t, 5, 15000);
    browser_get_stats(t->b, &s1);
    msg_t *r = &t->msgs[i];
    fprintf(stderr, "measure: 50 MB from Chromium: %.0f ms (reply %zu bytes in %llu reads)\n",
            (double)(uv_hrtime() - t0) / 1e6, r->len, (unsigned long long)(s1.reads - s0.reads));
    assert_true(r->len > BIG_MESSAGE);
    assert_true(r->p[r->len] == '\0');
    char *v = strstr(r->p, "\"value\":\"");
    assert_non_null(v);
    v += 9;
    assert_true((size_t)(r->p + r->len - v) > BIG_MESSAGE);
    for (size_t k = 0; k < BIG_MESSAGE; k++)
        if (v[k] != 'x') fail_msg("byte %zu of the value is %d", k, v[k]);
    assert_true(v[BIG_MESSAGE] == '"');
    free(r->p); /* 50 MB: now rather than at the teardown */
    r->p = NULL;
    r->len = 0;

    pid_t pid = browser_pid(t->b);
    browser_kill(t->b);
    assert_true(run_until(tb_is_exited, t, 10000));
    assert_nothing_left(pid, t->profile);
}

/* Reading paused: nothing is delivered, Chromium's replies pile up in the pipe; on resume they
 * come, several per read. */
static void test_pause_and_several_per_read(void **state) {
    (void)state;
    tb_t *t;
    launch_ready(&t);
    size_t before = t->n;
    browser_pause_reading(t->b);
    for (int id = 10; id < 40; id++) {
        char cmd[96];
        snprintf(cmd, sizeof cmd, "{\"id\":%d,\"method\":\"Browser.getVersion\"}", id);
        send_str(t->b, cmd);
    }
    run_for(400);
    assert_int_equal(t->n, before);
    browser_stats_t s0, s1;
    browser_get_stats(t->b, &s0);
    browser_resume_reading(t->b);
    wait_reply(t, 39, 5000);
    browser_get_stats(t->b, &s1);
    for (int id = 10; id < 40; id++) assert_true(find_reply(t, id) >= 0);
    /* 30 replies of ~300 bytes arrived while paused: far fewer reads than messages. */
    fprintf(stderr, "measure: 30 replies queued while paused came in %llu read(s)\n",
            (unsigned long long)(s1.reads - s0.reads));
    assert_int_equal(s1.messages_in - s0.messages_in, 30);
    assert_true(s1.reads - s0.reads < 30);
    pid_t pid = browser_pid(t->b);
    browser_kill(t->b);
    assert_true(run_until(tb_is_exited, t, 10000));
    assert_nothing_left(pid, t->profile);
}

static void test_crash_of_chromium(void **state) {
    (void)state;
    tb_t *t;
    launch_ready(&t);
    pid_t pid = browser_pid(t->b);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_true(run_until(tb_is_exited, t, 10000));
    fprintf(stderr, "measure: crash -> on_exit: %.0f ms\n", (double)(uv_hrtime() - t0) / 1e6);
    assert_int_equal(t->status, BROWSER_END_CRASHED);
    assert_int_equal(t->sig, SIGKILL);
    assert_nothing_left(pid, t->profile);
}

/* Chromium ends itself (Browser.close) while reading is paused: on_exit waits until the
 * reply it wrote before dying has been delivered. */
static bool profile_gone(void *arg) { return !path_exists(((tb_t *)arg)->profile); }

static void test_chromium_exits_by_itself(void **state) {
    (void)state;
    tb_t *t;
    launch_ready(&t);
    pid_t pid = browser_pid(t->b);
    browser_pause_reading(t->b);
    send_str(t->b, "{\"id\":2,\"method\":\"Browser.close\"}");
    /* The supervisor removes the profile after everything died, just before it exits. */
    assert_true(run_until(profile_gone, t, 10000));
    run_for(200);
    assert_false(t->exited);
    assert_true(find_reply(t, 2) < 0);
    browser_resume_reading(t->b);
    assert_true(run_until(tb_is_exited, t, 10000));
    assert_int_equal(t->status, 0);
    assert_int_equal(t->sig, 0);
    int i = find_reply(t, 2);
    assert_true(i >= 0 && (size_t)i < t->n_at_exit);
    assert_nothing_left(pid, t->profile);
}

static void test_supervisor_killed(void **state) {
    (void)state;
    tb_t *t;
    launch_ready(&t);
    pid_t pid = browser_pid(t->b);
    assert_int_equal(kill(browser_supervisor_pid(t->b), SIGKILL), 0);
    assert_true(run_until(tb_is_exited, t, 10000));
    assert_int_equal(t->status, BROWSER_END_SUPERVISOR_LOST);
    assert_int_equal(t->sig, SIGKILL);
    assert_nothing_left(pid, t->profile);
}

static void test_message_over_limit(void **state) {
    (void)state;
    browser_config_t cfg = test_config();
    cfg.max_message = 1 << 20;
    tb_t *t = launch_with(&cfg);
    send_str(t->b, "{\"id\":2,\"method\":\"Target.createTarget\",\"params\":{\"url\":\"about:blank\"}}");
    char target[64], session[64], cmd[512];
    result_string(t, wait_reply(t, 2, 20000), "targetId", target, sizeof target);
    remember_pid(browser_pid(t->b));
    snprintf(cmd, sizeof cmd,
             "{\"id\":3,\"method\":\"Target.attachToTarget\",\"params\":{\"targetId\":\"%s\",\"flatten\":true}}", target);
    send_str(t->b, cmd);
    result_string(t, wait_reply(t, 3, 10000), "sessionId", session, sizeof session);
    snprintf(cmd, sizeof cmd,
             "{\"id\":4,\"sessionId\":\"%s\",\"method\":\"Runtime.evaluate\",\"params\":{\"returnByValue\":true,"
             "\"expression\":\"'y'.repeat(2*1024*1024)\"}}",
             session);
    send_str(t->b, cmd);
    pid_t pid = browser_pid(t->b);
    assert_true(run_until(tb_is_exited, t, 10000));
    assert_int_equal(t->status, BROWSER_END_PROTOCOL_ERROR);
    assert_true(find_reply(t, 4) < 0);
    assert_nothing_left(pid, t->profile);
}

static void test_launch_failure(void **state) {
    (void)state;
    browser_config_t cfg = test_config();
    cfg.chromium_path = "/nonexistent/chromium";
    tb_t *t = launch_with(&cfg);
    assert_true(run_until(tb_is_exited, t, 5000));
    assert_int_equal(t->status, BROWSER_END_LAUNCH_FAILED);
    assert_false(path_exists(t->profile));
    /* A bad supervisor binary fails synchronously and leaves nothing. */
    cfg = test_config();
    cfg.supervisor_path = "/nonexistent/browserd";
    browser_t *b = NULL;
    assert_true(browser_launch(&loop, &cfg, &tb_cb, NULL, &b) < 0);
    assert_null(b);
    cfg.chromium_path = "relative/chromium";
    assert_int_equal(browser_launch(&loop, &cfg, &tb_cb, NULL, &b), -EINVAL);
    cfg = test_config();
    const char *port[] = {"--remote-debugging-port=9222"};
    cfg.extra_args = port;
    cfg.extra_arg_count = 1;
    assert_int_equal(browser_launch(&loop, &cfg, &tb_cb, NULL, &b), -EINVAL);
}

/* browser_free before the end: the processes and the profile still go, and no callback runs. */
static void test_free_while_running(void **state) {
    (void)state;
    tb_t *t;
    launch_ready(&t);
    pid_t pid = browser_pid(t->b);
    char profile[256];
    snprintf(profile, sizeof profile, "%s", t->profile);
    browser_free(t->b);
    t->b = NULL;
    assert_nothing_left(pid, profile);
    run_for(50);
    assert_false(t->exited);
}

/* Killed while still starting (before the supervisor reported Chromium's pid). */
static void test_kill_during_launch(void **state) {
    (void)state;
    tb_t *t = launch();
    browser_kill(t->b);
    assert_true(run_until(tb_is_exited, t, 10000));
    assert_int_equal(t->status, BROWSER_END_KILLED);
    assert_nothing_left(browser_pid(t->b) > 0 ? browser_pid(t->b) : -1, t->profile);
}

/* A supervisor that ignores SIGTERM (a stand-in: `exec sleep` with TERM ignored) is SIGKILLed
 * after kill_timeout_ms, and the browser still ends exactly once, as killed. */
static void test_kill_escalation(void **state) {
    (void)state;
    char script[128];
    snprintf(script, sizeof script, "%s/deaf-supervisor", base_dir);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fputs("#!/bin/bash\ntrap '' TERM\nexec sleep 300\n", f);
    fclose(f);
    assert_int_equal(chmod(script, 0755), 0);
    browser_config_t cfg = test_config();
    cfg.supervisor_path = script;
    cfg.kill_timeout_ms = 300;
    tb_t *t = launch_with(&cfg);
    run_for(100);
    uint64_t t0 = uv_hrtime();
    browser_kill(t->b);
    assert_true(run_until(tb_is_exited, t, 5000));
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    assert_true(ms >= 290);
    assert_int_equal(t->status, BROWSER_END_KILLED);
}

/* browserd SIGKILLed: a child process launches a browser and is killed with -9; the supervisor
 * (reparented to us: we are a subreaper) cleans up on its parent-death signal. */
static void test_parent_sigkill(void **state) {
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child > 0) fork_child = child;
    if (child == 0) {
        close(fds[0]);
        uv_loop_t l;
        if (uv_loop_init(&l) < 0) _exit(1);
        static tb_t ct;
        browser_config_t cfg = test_config();
        if (browser_launch(&l, &cfg, &tb_cb, &ct, &ct.b) < 0) _exit(1);
        char *m = strdup("{\"id\":1,\"method\":\"Browser.getVersion\"}");
        browser_send(ct.b, m, strlen(m));
        while (ct.n == 0 && !ct.exited) uv_run(&l, UV_RUN_ONCE);
        char line[512];
        int n = snprintf(line, sizeof line, "%d %d %s\n", browser_supervisor_pid(ct.b), browser_pid(ct.b),
                         browser_profile_dir(ct.b));
        if (ct.exited || write(fds[1], line, (size_t)n) != n) _exit(1);
        for (;;) pause();
    }
    close(fds[1]);
    char line[512] = "";
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fds[0], line + got, sizeof line - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        if (memchr(line, '\n', got)) break;
    }
    close(fds[0]);
    line[got] = '\0';
    int sup = 0, pid = 0;
    char profile[256] = "";
    int fields = sscanf(line, "%d %d %255s", &sup, &pid, profile);
    remember_pid(sup);
    remember_pid(pid);
    assert_int_equal(fields, 3);
    assert_true(path_exists(profile));
    assert_true(count_procs(pid, NULL) >= 3);

    uint64_t t0 = uv_hrtime();
    assert_int_equal(kill(child, SIGKILL), 0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    fork_child = 0;
    assert_nothing_left(pid, profile);
    fprintf(stderr, "measure: parent SIGKILL -> nothing left: %.0f ms\n", (double)(uv_hrtime() - t0) / 1e6);
    /* The supervisor ended cleanly (exit 0 = it reported an "end" after the cleanup). */
    int st = -1;
    pid_t w = 0;
    for (int i = 0; i < 300 && (w = waitpid(sup, &st, WNOHANG)) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(w, sup);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- processes that leave the group, with a fake Chromium ----------------------------------- */

/* A stand-in for Chromium that scatters processes the way Chromium's crashpad handler does (and
 * worse): one in a session of its own, one double-forked into a session of its own (orphaned at
 * once), one plain group member. It writes their pids to $FAKE_PIDS. FAKE_EXIT set: the leader
 * exits by itself with that code, leaving the others running. */
static const char fake_chromium[] = "#!/bin/bash\n"
                                    "setsid sleep 300 & echo \"0 $!\" >> \"$FAKE_PIDS\"\n"
                                    "( setsid sleep 300 & echo \"1 $!\" >> \"$FAKE_PIDS\" ) &\n"
                                    "sleep 300 & echo \"2 $!\" >> \"$FAKE_PIDS\"\n"
                                    "sleep 0.2\n" /* let them exec setsid before we are looked at */
                                    "echo \"3 $$\" >> \"$FAKE_PIDS\"\n"
                                    "if [ -n \"$FAKE_EXIT\" ]; then sleep 0.3; exit \"$FAKE_EXIT\"; fi\n"
                                    "exec sleep 300\n";

/* Lines "INDEX PID" -> pids[INDEX]; returns how many lines. */
static int read_pids(const char *file, pid_t *pids, int cap) {
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    int n = 0, i, p;
    while (fscanf(f, "%d %d", &i, &p) == 2)
        if (i >= 0 && i < cap) {
            pids[i] = p;
            n++;
        }
    fclose(f);
    return n;
}

typedef struct {
    const char *file;
    int want;
} pids_wait_t;
static bool pids_written(void *arg) {
    pids_wait_t *w = arg;
    pid_t p[8];
    return read_pids(w->file, p, 8) >= w->want;
}

static void run_fake(bool leader_exits) {
    char script[128], pidfile[128];
    snprintf(script, sizeof script, "%s/fake-chromium", base_dir);
    snprintf(pidfile, sizeof pidfile, "%s/fake-pids", base_dir);
    unlink(pidfile);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fputs(fake_chromium, f);
    fclose(f);
    assert_int_equal(chmod(script, 0755), 0);
    setenv("FAKE_PIDS", pidfile, 1);
    if (leader_exits) setenv("FAKE_EXIT", "3", 1);
    else unsetenv("FAKE_EXIT");
    browser_config_t cfg = test_config();
    cfg.chromium_path = script;
    tb_t *t = launch_with(&cfg);
    pids_wait_t w = {pidfile, 4};
    bool written = run_until(pids_written, &w, 5000);
    unsetenv("FAKE_PIDS");
    unsetenv("FAKE_EXIT");
    assert_true(written);
    pid_t pids[8] = {0};
    int n = read_pids(pidfile, pids, 8);
    assert_int_equal(n, 4);
    for (int i = 0; i < n; i++) remember_pid(pids[i]);
    pid_t leader = pids[3];
    assert_int_equal(leader, browser_pid(t->b));
    assert_int_equal(getpgid(pids[2]), leader); /* the plain member */
    assert_int_equal(getsid(pids[0]), pids[0]); /* left the group and the session */
    assert_int_equal(getsid(pids[1]), pids[1]);
    if (!leader_exits) browser_kill(t->b);
    assert_true(run_until(tb_is_exited, t, 10000));
    if (leader_exits) {
        assert_int_equal(t->status, 3);
    } else {
        assert_int_equal(t->status, BROWSER_END_KILLED);
    }
    for (int i = 0; i < n; i++) {
        errno = 0;
        if (kill(pids[i], 0) == 0 || errno != ESRCH) fail_msg("process %d (#%d) survived", (int)pids[i], i);
    }
    assert_false(path_exists(t->profile));
}

static void test_escaped_processes_killed(void **state) {
    (void)state;
    run_fake(false);
}

static void test_escaped_processes_outlive_leader(void **state) {
    (void)state;
    run_fake(true);
}

/* ---- the pool ----------------------------------------------------------------------------- */

typedef struct {
    browser_pool_t *pool;
    unsigned want_ready;
    uint64_t lost_at_least;
    bool stopped;
} pool_wait_t;
static browser_pool_t *test_pool_ptr; /* for the teardown, if the test fails halfway */
static bool pool_has_ready(void *arg) {
    pool_wait_t *w = arg;
    browser_pool_stats_t st;
    browser_pool_get_stats(w->pool, &st);
    return st.ready >= w->want_ready && st.lost >= w->lost_at_least;
}
static void pool_done(void *arg) { ((pool_wait_t *)arg)->stopped = true; }
static bool pool_is_stopped(void *arg) { return ((pool_wait_t *)arg)->stopped; }

static void stop_test_pool(void) {
    if (!test_pool_ptr) return;
    pool_wait_t w = {test_pool_ptr, 0, 0, false};
    browser_pool_stop(test_pool_ptr, pool_done, &w);
    if (run_until(pool_is_stopped, &w, 15000)) browser_pool_free(test_pool_ptr);
    test_pool_ptr = NULL;
}

static int setup_calls;
/* The sizing rule on its own: Little's law times the burst factor, plus a spare, within
 * size .. max_size and the room. */
static void test_pool_wanted(void **state) {
    (void)state;
    assert_int_equal(browser_pool_wanted(0, 400000, 2, 8, UINT_MAX), 2);      /* nobody comes: the size */
    assert_int_equal(browser_pool_wanted(1, 400000, 1, 8, UINT_MAX), 1);      /* 1/s x 0.55 s x 1.5 -> 1 */
    assert_int_equal(browser_pool_wanted(0.5, 400000, 1, 8, UINT_MAX), 1);    /* one session: the size covers it */
    assert_int_equal(browser_pool_wanted(4, 400000, 1, 8, UINT_MAX), 4);      /* 4 x 0.55 x 1.5 = 3.3 -> 4 */
    assert_int_equal(browser_pool_wanted(4, -1, 1, 8, UINT_MAX), 7);          /* unknown: 1 s assumed -> 6.9 -> 7 */
    assert_int_equal(browser_pool_wanted(20, 500000, 2, 8, UINT_MAX), 8);     /* max_size */
    assert_int_equal(browser_pool_wanted(20, 500000, 2, 8, 3), 3);            /* free session slots */
    assert_int_equal(browser_pool_wanted(20, 500000, 2, 8, 0), 2);            /* no room (memory): the size */
    assert_int_equal(browser_pool_wanted(20, 500000, 3, 2, UINT_MAX), 3);     /* max below size: fixed */
}

static bool pool_starting(void *arg) { /* a launch under way, nothing ready */
    pool_wait_t *w = arg;
    browser_pool_stats_t st;
    browser_pool_get_stats(w->pool, &st);
    return st.ready == 0 && st.waiting > 0;
}
static bool pool_settled(void *arg) { /* back to its size: every extra one retired */
    pool_wait_t *w = arg;
    browser_pool_stats_t st;
    browser_pool_get_stats(w->pool, &st);
    return st.target == 1 && st.waiting == 1 && st.ready == 1 && st.retired >= w->lost_at_least;
}

/* A pool of 1 (max 3) under a burst of takes grows to 3 browsers launched in parallel, then
 * with no more arrivals goes back to 1, stopping the extra ones (not counted as lost). */
static void test_pool_sizes_itself(void **state) {
    (void)state;
    browser_config_t cfg = test_config();
    browser_pool_config_t pc = {.size = 1, .max_size = 3, .browser = &cfg, .shrink_idle_ms = 500};
    browser_pool_t *pool;
    assert_int_equal(browser_pool_new(&loop, &pc, &pool), 0);
    test_pool_ptr = pool;
    pool_wait_t w = {pool, 1, 0, false};
    assert_true(run_until(pool_has_ready, &w, 20000));
    browser_pool_stats_t st;
    browser_pool_get_stats(pool, &st);
    assert_int_equal(st.target, 1);
    /* sixteen sessions within a second: one finds the warm browser, the rest miss */
    tb_t *hit = NULL, *t = tb_new();
    unsigned hits = 0;
    for (int i = 0; i < 16; i++) {
        browser_t *b = browser_pool_take(pool, &tb_cb, t);
        if (b) {
            hits++;
            t->b = b;
            remember_pid(browser_pid(b));
            hit = t;
            t = tb_new();
        }
    }
    browser_pool_get_stats(pool, &st);
    assert_int_equal(hits, 1);
    assert_int_equal(st.misses, 15);
    assert_int_equal(st.target, 3); /* 8/s x (launch + 0.15 s) x 1.5 > 3 on any machine: max_size */
    /* the next session, while the pool's browsers start (none ready): the one starting longest */
    assert_true(run_until(pool_starting, &w, 5000));
    tb_t *early = t;
    early->b = browser_pool_take(pool, &tb_cb, early);
    assert_non_null(early->b);
    remember_pid(browser_pid(early->b));
    browser_pool_get_stats(pool, &st);
    assert_int_equal(st.taken_starting, 1);
    assert_int_equal(st.misses, 16);
    wait_reply(early, CDP_ID_POOL_PROBE, 20000); /* it starts for its taker: the probe's reply comes */
    w.want_ready = 3;
    assert_true(run_until(pool_has_ready, &w, 60000)); /* three ready together */
    browser_pool_get_stats(pool, &st);
    assert_int_equal(st.waiting, 3);
    uint64_t lost = st.lost;
    /* no arrivals: after 10 s the rate is 0, and the two extra ones are stopped */
    w.lost_at_least = 2;
    assert_true(run_until(pool_settled, &w, 25000));
    browser_pool_get_stats(pool, &st);
    assert_true(st.retired >= 2);
    assert_int_equal(st.lost, lost); /* a shrink is not a loss */
    /* every browser launched is accounted for: taken, retired, lost or still waiting */
    assert_int_equal(st.launched, st.taken + st.retired + st.lost + st.waiting);
    browser_kill(hit->b); /* the taken ones end; the teardown frees them */
    assert_true(run_until(tb_is_exited, hit, 10000));
    browser_kill(early->b);
    assert_true(run_until(tb_is_exited, early, 10000));
    stop_test_pool();
}

static void pool_setup_hook(void *ctx, browser_pool_t *pool, browser_t *b) {
    (void)ctx;
    setup_calls++;
    browser_pool_mark_ready(pool, b);
}

static void test_pool(void **state) {
    (void)state;
    browser_config_t cfg = test_config();
    browser_pool_config_t pc = {.size = 2, .browser = &cfg, .on_setup = pool_setup_hook};
    browser_pool_t *pool;
    setup_calls = 0;
    assert_int_equal(browser_pool_new(&loop, &pc, &pool), 0);
    test_pool_ptr = pool;
    pool_wait_t w = {pool, 2, 0, false};
    assert_null(browser_pool_take(pool, &tb_cb, NULL)); /* nothing ready yet */
    assert_true(run_until(pool_has_ready, &w, 20000));
    browser_pool_stats_t st;
    browser_pool_get_stats(pool, &st);
    fprintf(stderr, "measure: pool of 2 launched together: time to ready %.0f .. %.0f ms\n", st.min_ready_us / 1000.0,
            st.max_ready_us / 1000.0);
    assert_int_equal(setup_calls, 2);

    /* Take one: it is ready (answers at once) and now ours; a replacement starts. */
    tb_t *t = tb_new();
    uint64_t t0 = uv_hrtime();
    t->b = browser_pool_take(pool, &tb_cb, t);
    assert_non_null(t->b);
    double take_us = (double)(uv_hrtime() - t0) / 1e3;
    remember_pid(browser_supervisor_pid(t->b));
    remember_pid(browser_pid(t->b));
    snprintf(t->profile, sizeof t->profile, "%s", browser_profile_dir(t->b));
    send_str(t->b, "{\"id\":1,\"method\":\"Browser.getVersion\"}");
    t0 = uv_hrtime();
    wait_reply(t, 1, 2000);
    fprintf(stderr, "measure: pool take %.0f us, then first command answered in %.1f ms\n", take_us,
            (double)(uv_hrtime() - t0) / 1e6);
    assert_true(run_until(pool_has_ready, &w, 20000));
    browser_pool_get_stats(pool, &st);
    assert_int_equal(st.launched, 3);
    assert_int_equal(st.taken, 1);
    fprintf(stderr, "measure: replacement ready %.0f ms after launch (a session running alongside)\n",
            st.last_ready_us / 1000.0);

    /* A waiting browser that dies is replaced. Find one by its profile (not the taken one). */
    int victim = 0;
    DIR *d = opendir(temp_root);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) && !victim) {
        if (!browser_profile_name_is_final(de->d_name) || strstr(t->profile, de->d_name)) continue;
        char needle[512];
        snprintf(needle, sizeof needle, "--user-data-dir=%s/%s/data", temp_root, de->d_name);
        for (int tries = 0; tries < 100 && !victim; tries++) {
            DIR *pd = opendir("/proc");
            struct dirent *pe;
            while (pd && (pe = readdir(pd)) && !victim) {
                char *end;
                long pid = strtol(pe->d_name, &end, 10);
                if (*end || pid <= 0) continue;
                char path[64], buf[4096];
                snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
                int fd = open(path, O_RDONLY);
                if (fd < 0) continue;
                ssize_t r = read(fd, buf, sizeof buf - 1);
                close(fd);
                if (r <= 0) continue;
                buf[r] = '\0';
                /* the main process: argv[0] is chromium, and it leads its group */
                for (ssize_t i = 0; i < r; i++)
                    if (buf[i] == '\0') buf[i] = ' ';
                if (strstr(buf, needle) && !strstr(buf, "--type=") && getpgid((pid_t)pid) == pid) victim = (int)pid;
            }
            if (pd) closedir(pd);
        }
    }
    closedir(d);
    assert_true(victim > 0);
    remember_pid(victim);
    uint64_t lost_before = st.lost;
    assert_int_equal(kill(victim, SIGKILL), 0);
    w.lost_at_least = lost_before + 1;
    assert_true(run_until(pool_has_ready, &w, 20000));
    browser_pool_get_stats(pool, &st);
    assert_int_equal(st.lost, lost_before + 1);
    assert_int_equal(st.launched, 4);
    assert_int_equal(st.ready, 2);

    /* Stop: the waiting ones go, with their profiles; the taken one is still ours. */
    browser_pool_stop(pool, pool_done, &w);
    assert_null(browser_pool_take(pool, &tb_cb, NULL));
    assert_false(w.stopped); /* never from inside stop */
    assert_true(run_until(pool_is_stopped, &w, 15000));
    browser_pool_free(pool);
    test_pool_ptr = NULL;
    int left = 0;
    d = opendir(temp_root);
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') left++;
    closedir(d);
    assert_int_equal(left, 1); /* the taken browser's profile */
    assert_true(path_exists(t->profile));
    assert_int_equal(t->n, 1); /* the probe's reply never reached the taker */

    pid_t pid = browser_pid(t->b);
    browser_kill(t->b);
    assert_true(run_until(tb_is_exited, t, 10000));
    assert_nothing_left(pid, t->profile);
    assert_int_equal(count_procs(0, temp_root), 0);
}

/* ---- stale profiles ----------------------------------------------------------------------- */

static void make_dir_with_file(const char *dir) {
    char p[512];
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(p, sizeof p, "%s/sub", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/sub/file", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/link", dir);
    assert_int_equal(symlink("/etc/hostname", p), 0); /* removed as a link, target untouched */
}

static void test_cleanup_stale(void **state) {
    (void)state;
    char root[256], dead[300], live[300], other[300], young_new[300], old_new[300];
    snprintf(root, sizeof root, "%s/stale", base_dir);
    assert_int_equal(browser_profile_cleanup_stale(root), 0); /* absent root: nothing to do */
    assert_int_equal(browser_profile_root_check(root, true), 0);
    snprintf(dead, sizeof dead, "%s/s-00000000000000aa", root);
    snprintf(live, sizeof live, "%s/s-00000000000000bb", root);
    snprintf(other, sizeof other, "%s/s-not-ours", root);
    snprintf(young_new, sizeof young_new, "%s/.new-s-00000000000000cc", root);
    snprintf(old_new, sizeof old_new, "%s/.new-s-00000000000000dd", root);
    make_dir_with_file(dead);
    make_dir_with_file(other);
    make_dir_with_file(young_new);
    make_dir_with_file(old_new);
    int lock_fd;
    assert_int_equal(browser_profile_create(live, &lock_fd), 0); /* held, like a supervisor's */
    int again = -2;
    assert_int_equal(browser_profile_create(live, &again), -EEXIST); /* always fresh */
    assert_int_equal(again, -1);
    struct timespec old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    assert_int_equal(utimensat(AT_FDCWD, old_new, old, 0), 0);

    assert_int_equal(browser_profile_cleanup_stale(root), 2);
    assert_false(path_exists(dead));
    assert_false(path_exists(old_new));
    assert_true(path_exists(live));
    assert_true(path_exists(other));
    assert_true(path_exists(young_new));
    assert_true(path_exists("/etc/hostname"));
    close(lock_fd); /* the "supervisor" dies */
    assert_int_equal(browser_profile_cleanup_stale(root), 1);
    assert_false(path_exists(live));

    /* A root that is not ours, or not a directory, is refused. */
    chmod(root, 0755);
    assert_int_equal(browser_profile_root_check(root, false), 0);
    struct stat st;
    assert_int_equal(stat(root, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700); /* tightened */
    char link[300];
    snprintf(link, sizeof link, "%s/stale-link", base_dir);
    assert_int_equal(symlink(root, link), 0);
    assert_int_equal(browser_profile_cleanup_stale(link), -EPERM);
    if (geteuid() == 0) {
        assert_int_equal(chown(root, 65534, 65534), 0);
        assert_int_equal(browser_profile_cleanup_stale(root), -EPERM);
        assert_int_equal(chown(root, 0, 0), 0);
    }
    assert_int_equal(browser_profile_remove(root), 0);
    unlink(link);
}

/* browserd's fallback cleanup after a lost supervisor: the profile, and its in-progress twin
 * when the supervisor died setting it up, go; a sibling's do not. */
static void test_remove_when_unlocked_takes_the_in_progress_twin(void **state) {
    (void)state;
    char root[256], done[300], pending[300], sibling[300];
    snprintf(root, sizeof root, "%s/fallback", base_dir);
    assert_int_equal(browser_profile_root_check(root, true), 0);
    snprintf(done, sizeof done, "%s/s-00000000000000ee", root);
    snprintf(pending, sizeof pending, "%s/.new-s-00000000000000ee", root);
    snprintf(sibling, sizeof sibling, "%s/.new-s-00000000000000ef", root);
    make_dir_with_file(pending);
    make_dir_with_file(sibling);
    assert_int_equal(browser_profile_remove_when_unlocked(done, 100), 0); /* died before the rename */
    assert_false(path_exists(pending));
    assert_true(path_exists(sibling));
    make_dir_with_file(done);
    assert_int_equal(browser_profile_remove_when_unlocked(done, 100), 0); /* the usual case */
    assert_false(path_exists(done));
    assert_true(path_exists("/etc/hostname"));
    assert_int_equal(browser_profile_remove(root), 0);
}

/* ---- main --------------------------------------------------------------------------------- */

static void remove_base(void) {
    if (!base_dir[0]) return;
    kill_pids_naming(base_dir);
    browser_profile_remove(base_dir);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], BROWSER_SUPERVISOR_COMMAND) == 0) return supervisor_main(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    const char *filter = getenv("BROWSERD_TEST_FILTER"); /* e.g. "test_pool" or "*kill*" */
    if (filter && *filter) cmocka_set_test_filter(filter);
    const char *c = getenv("BROWSERD_TEST_CHROMIUM");
    if (c && *c) chromium = c;
    /* Orphans of the parent-SIGKILL test (its supervisor) are reparented to us, not to init. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    snprintf(base_dir, sizeof base_dir, "/tmp/browserd-test-XXXXXX");
    if (!mkdtemp(base_dir)) return 1;
    snprintf(temp_root, sizeof temp_root, "%s/profiles", base_dir);
    atexit(remove_base);

    const struct CMUnitTest splitter[] = {
        cmocka_unit_test(test_split_several_in_one_read),
        cmocka_unit_test(test_split_byte_by_byte),
        cmocka_unit_test(test_split_large_message_handed_over),
        cmocka_unit_test(test_cleanup_stale),
        cmocka_unit_test(test_remove_when_unlocked_takes_the_in_progress_twin),
        cmocka_unit_test(test_pool_wanted),
        T(test_escaped_processes_killed),
        T(test_escaped_processes_outlive_leader),
        T(test_kill_escalation),
    };
    int failed = cmocka_run_group_tests_name("browser_offline", splitter, NULL, NULL);
    if (access(chromium, X_OK) != 0) {
        fprintf(stderr, "%s not found: the Chromium tests are skipped\n", chromium);
        return failed;
    }
    const struct CMUnitTest with_chromium[] = {
        T(test_launch_version_kill),
        T(test_big_message_round_trip),
        T(test_pause_and_several_per_read),
        T(test_crash_of_chromium),
        T(test_chromium_exits_by_itself),
        T(test_supervisor_killed),
        T(test_message_over_limit),
        T(test_launch_failure),
        T(test_free_while_running),
        T(test_kill_during_launch),
        T(test_parent_sigkill),
        T(test_pool),
        T(test_pool_sizes_itself),
    };
    failed += cmocka_run_group_tests_name("browser_chromium", with_chromium, NULL, NULL);
    return failed;
}
