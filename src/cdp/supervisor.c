/* The browser supervisor: browserd's own binary in the hidden mode `__browser-supervisor`.
 * Contract with browserd: supervisor.h. Why a separate process: the cleanup must happen even
 * when browserd is SIGKILLed, and only a process that outlives browserd can do it. It is
 * single-threaded and does nothing but wait for signals, so it cannot get stuck the way a
 * busy daemon can.
 *
 * Process-group findings (Chromium 156, headless, --no-sandbox; checked with ps -o pid,pgid,sid):
 * the main process, both zygotes, the GPU, network and storage utilities and every renderer stay
 * in the group of the main process; the two chrome_crashpad_handler processes do not: they are
 * double-forked and call setsid(), so they sit in sessions of their own, reparented away from
 * Chromium. Killing the group alone would leave them. So the supervisor is a child subreaper
 * (PR_SET_CHILD_SUBREAPER): every orphaned descendant is reparented to it, and the teardown
 * kills the group *and* every child of the supervisor until it has no child left. A process
 * with no child has no descendant (an orphan always becomes the subreaper's child), so that is
 * the complete condition, whatever Chromium's processes do with their groups or sessions. */
#include "core/log.h"
#include "cdp/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cdp/browser.h"
#include "cdp/browser_profile.h"

/* Give up killing after this long (a process in uninterruptible sleep cannot die); the profile
 * is removed anyway and the failure logged. */
#define TEARDOWN_LIMIT_MS 10000

typedef struct {
    pid_t parent;
    const char *profile;
    bool chromium_stderr;
    char **chromium_argv; /* NULL-terminated, argv[0] is the path */
    int status_fd;        /* -1 when run by hand without fd 5 */
    pid_t self;
    pid_t leader;         /* Chromium's main process, 0 before the fork */
    bool leader_done;
    int leader_status;    /* waitpid status of the leader */
    unsigned reaped;
} sup_t;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void status_line(sup_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void status_line(sup_t *s, const char *fmt, ...) {
    if (s->status_fd < 0) return;
    char line[SUPERVISOR_STATUS_MAX_LINE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof line) return;
    /* Small writes to a socket with room: one write. EPIPE (browserd gone) is fine: SIGPIPE is
     * blocked or ignored here and the cleanup does not depend on anyone reading this. */
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = write(s->status_fd, line + off, (size_t)n - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        off += (size_t)w;
    }
}

static void reap_nohang(sup_t *s) {
    for (;;) {
        int st;
        pid_t w = waitpid(-1, &st, WNOHANG);
        if (w <= 0) return;
        s->reaped++;
        if (w == s->leader && !s->leader_done) {
            s->leader_done = true;
            s->leader_status = st;
        }
    }
}

/* SIGKILL to every direct child (the leader, orphans reparented to us). */
static void kill_children(sup_t *s) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)s->self, (int)s->self);
    FILE *f = fopen(path, "re");
    if (f) {
        int pid;
        while (fscanf(f, "%d", &pid) == 1)
            if (pid > 0) kill(pid, SIGKILL);
        fclose(f);
        return;
    }
    /* Kernels without CONFIG_PROC_CHILDREN: scan /proc for processes whose parent is us. */
    DIR *d = opendir("/proc");
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        char stat_path[64], buf[512];
        snprintf(stat_path, sizeof stat_path, "/proc/%ld/stat", pid);
        int fd = open(stat_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        char *rp = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
        int ppid;
        char state;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == s->self) kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
}

/* Kills Chromium's group and every descendant, reaping them, until no child is left. Returns
 * 0, or -ETIMEDOUT if something would not die within TEARDOWN_LIMIT_MS. */
static int kill_everything(sup_t *s) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int64_t deadline = now_ms() + TEARDOWN_LIMIT_MS;
    for (;;) {
        if (s->leader > 0) kill(-s->leader, SIGKILL);
        kill_children(s);
        for (;;) {
            int st;
            pid_t w = waitpid(-1, &st, WNOHANG);
            if (w > 0) {
                s->reaped++;
                if (w == s->leader && !s->leader_done) {
                    s->leader_done = true;
                    s->leader_status = st;
                }
                continue;
            }
            if (w < 0 && errno == ECHILD) return 0;
            break; /* children left that are not dead yet */
        }
        if (now_ms() > deadline) return -ETIMEDOUT;
        struct timespec ts = {0, 20 * 1000 * 1000};
        sigtimedwait(&chld, NULL, &ts);
    }
}

static int usage(void) {
    fprintf(stderr, "browserd " BROWSER_SUPERVISOR_COMMAND
                    ": internal command: --parent PID --profile DIR [--chromium-stderr] -- CHROMIUM ARGS...\n");
    return 2;
}

/* In the forked child: becomes Chromium (the supervisor is single-threaded, so anything may be
 * called between fork and exec). Reports a failure through err_fd. */
static void exec_chromium(sup_t *s, int lock_fd, int err_fd, const char *home) {
    int e;
    /* Its own group (the one killed at the end) before anything else can fork from it. */
    if (setpgid(0, 0) < 0) goto fail;
    /* If the supervisor dies (SIGKILL), Chromium must not outlive it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) goto fail;
    if (getppid() != s->self) _exit(127);
    /* The lock stays held while Chromium's main process lives, so its profile is never taken
     * for stale while a dying Chromium can still write to it. */
    if (fcntl(lock_fd, F_SETFD, 0) < 0) goto fail;
    if (!s->chromium_stderr) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) goto fail;
        close(null);
    }
    if (chdir(home) < 0) goto fail;
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL); /* SIGPIPE was ignored */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(s->chromium_argv[0], s->chromium_argv);
fail:
    e = errno;
    if (write(err_fd, &e, sizeof e) < 0) { /* nothing more to do */
    }
    _exit(127);
}

int supervisor_main(int argc, char **argv) {
    sup_t s = {.status_fd = -1, .self = getpid()};
    log_setup_from_env(); /* the daemon's format and level (log.h) */
    int i = 2;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--parent") == 0 && i + 1 < argc) s.parent = (pid_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc) s.profile = argv[++i];
        else if (strcmp(argv[i], "--chromium-stderr") == 0) s.chromium_stderr = true;
        else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else return usage();
    }
    if (i >= argc || s.parent <= 0 || !s.profile || argv[i][0] != '/') return usage();
    s.chromium_argv = argv + i;

    /* Signals are taken synchronously with sigwaitinfo: blocked first, so that the parent-death
     * signal armed next is held pending if browserd is already gone, never lost. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) return 1;
    /* browserd may have died between fork and the prctl above: then nobody will ever signal
     * us and nothing has been created yet, so just leave. */
    if (getppid() != s.parent) return 1;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) return 1;

    if (fcntl(SUPERVISOR_STATUS_FD, F_GETFD) >= 0) {
        s.status_fd = SUPERVISOR_STATUS_FD;
        fcntl(s.status_fd, F_SETFD, FD_CLOEXEC); /* not Chromium's business */
    }
    /* Descriptors browserd leaked without O_CLOEXEC (a library's, a future bug) must not reach
     * Chromium: they would keep client sockets or database files open for the session. */
    if (close_range(SUPERVISOR_STATUS_FD + 1, ~0U, 0) < 0)
        for (int fd = SUPERVISOR_STATUS_FD + 1; fd < 1024; fd++) close(fd);

    const char *step = "args";
    int err = 0, lock_fd = -1;
    int64_t t0 = now_ms();
    char root[4096], sub[3][4096 + 16];
    const char *slash = strrchr(s.profile, '/');
    if (!slash || slash == s.profile || (size_t)(slash - s.profile) >= sizeof root) {
        err = EINVAL;
        goto setup_failed;
    }
    memcpy(root, s.profile, (size_t)(slash - s.profile));
    root[slash - s.profile] = '\0';
    step = "cdp_fds";
    if (fcntl(SUPERVISOR_CDP_IN_FD, F_GETFD) < 0 || fcntl(SUPERVISOR_CDP_OUT_FD, F_GETFD) < 0) {
        err = EBADF;
        goto setup_failed;
    }
    step = "temp_root";
    if ((err = -browser_profile_root_check(root, true)) != 0) goto setup_failed;
    step = "profile";
    if ((err = -browser_profile_create(s.profile, &lock_fd)) != 0) goto setup_failed;
    snprintf(sub[0], sizeof sub[0], "%s/home", s.profile);
    snprintf(sub[1], sizeof sub[1], "%s/home/.config", s.profile);
    snprintf(sub[2], sizeof sub[2], "%s/home/.cache", s.profile);
    char tmpdir[4096 + 16];
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", s.profile);
    /* Chromium puts unix sockets in TMPDIR (".org.chromium.Chromium.XXXXXX/SingletonSocket",
     * about 45 characters), and a socket path has at most 107: under a long TMPDIR the
     * profile's own tmp would be too deep and Chromium aborts. Then a short directory of
     * /tmp serves instead, removed with the profile. */
    char short_tmp[32] = "";
    if (strlen(tmpdir) + 48 > 107) {
        snprintf(short_tmp, sizeof short_tmp, "/tmp/browserd-tmp-XXXXXX");
        if (!mkdtemp(short_tmp)) {
            err = errno;
            goto setup_failed;
        }
        snprintf(tmpdir, sizeof tmpdir, "%s", short_tmp);
    }
    step = "env";
    /* Everything Chromium writes outside --user-data-dir goes into the profile too (see
     * browser_profile.h). Set here, before the fork, because setenv is not fork-safe. */
    if (setenv("HOME", sub[0], 1) < 0 || setenv("XDG_CONFIG_HOME", sub[1], 1) < 0 ||
        setenv("XDG_CACHE_HOME", sub[2], 1) < 0 || setenv("TMPDIR", tmpdir, 1) < 0) {
        err = errno;
        goto setup_failed;
    }

    int errpipe[2];
    step = "fork";
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        err = errno;
        goto setup_failed;
    }
    pid_t pid = fork();
    if (pid < 0) {
        err = errno;
        close(errpipe[0]);
        close(errpipe[1]);
        goto setup_failed;
    }
    if (pid == 0) {
        close(errpipe[0]);
        exec_chromium(&s, lock_fd, errpipe[1], sub[0]);
    }
    s.leader = pid;
    /* Also from this side, so the group exists before we might kill it (whichever runs first);
     * EACCES once the child has exec'd is fine. */
    setpgid(pid, pid);
    close(errpipe[1]);
    close(SUPERVISOR_CDP_IN_FD);
    close(SUPERVISOR_CDP_OUT_FD);
    int exec_errno = 0;
    ssize_t n;
    do n = read(errpipe[0], &exec_errno, sizeof exec_errno);
    while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof exec_errno) {
        step = "exec";
        err = exec_errno;
        kill_everything(&s);
        goto setup_failed;
    }
    status_line(&s, "pid %d\n", (int)pid);

    int requested = 0;
    while (!requested && !s.leader_done) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig < 0) continue; /* EINTR */
        if (sig == SIGCHLD) reap_nohang(&s);
        else if (sig != SIGPIPE) requested = sig;
    }
    int64_t t_end = now_ms();
    int krc = kill_everything(&s);
    int rrc = browser_profile_remove(s.profile);
    if (short_tmp[0]) browser_profile_remove(short_tmp);
    close(lock_fd);
    const char *how;
    int code;
    if (requested) {
        how = "killed";
        code = requested;
    } else if (WIFSIGNALED(s.leader_status)) {
        how = "signal";
        code = WTERMSIG(s.leader_status);
    } else {
        how = "exit";
        code = WEXITSTATUS(s.leader_status);
    }
    log_event(LOG_INFO, "browser", "browser_supervisor_end",
            "chromium_pid=%d how=%s code=%d%s reaped=%u kill=%s "
            "profile_removed=%s teardown_ms=%lld lived_ms=%lld",
            (int)pid, how, code, requested && getppid() != s.parent ? " parent_gone=1" : "", s.reaped,
            krc == 0 ? "ok" : "timeout", rrc == 0 ? "yes" : strerror(-rrc), (long long)(now_ms() - t_end),
            (long long)(t_end - t0));
    status_line(&s, "end %s %d\n", how, code);
    return 0;

setup_failed:
    if (lock_fd >= 0) {
        browser_profile_remove(s.profile);
        close(lock_fd);
    }
    log_event(LOG_ERROR, "browser", "browser_supervisor_failed", "step=%s error=\"%s\" profile=%s", step, strerror(err),
            s.profile);
    status_line(&s, "end error %d %s\n", err, step);
    return 1;
}
