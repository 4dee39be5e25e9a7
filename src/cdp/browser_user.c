/* Browsers under a user of their own: see browser_user.h. */
#include "cdp/browser_user.h"
#include "cdp/browser_profile.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int browser_user_resolve(const char *name, browser_user_t *out, char *err, size_t errcap) {
    memset(out, 0, sizeof *out);
    if (!name || !*name || strlen(name) >= sizeof out->name) {
        snprintf(err, errcap, "--browser-user: expected a user name or uid, got '%s'", name ? name : "");
        return -1;
    }
    if (geteuid() != 0) {
        snprintf(err, errcap,
                 "--browser-user %s: browserd is not root (uid %u), so its browsers already run as its own "
                 "user with Chromium's sandbox; only root can start them as another",
                 name, (unsigned)geteuid());
        return -1;
    }
    struct passwd pw, *found = NULL;
    char buf[4096];
    int rc = getpwnam_r(name, &pw, buf, sizeof buf, &found);
    if (!found) {
        char *end;
        errno = 0;
        unsigned long id = strtoul(name, &end, 10);
        if (*end == '\0' && errno == 0 && id <= 0x7fffffffUL) rc = getpwuid_r((uid_t)id, &pw, buf, sizeof buf, &found);
    }
    if (!found) {
        snprintf(err, errcap, "--browser-user: no user '%s'%s%s", name, rc ? ": " : "", rc ? strerror(rc) : "");
        return -1;
    }
    if (pw.pw_uid == 0) {
        snprintf(err, errcap,
                 "--browser-user %s: that is root, under which Chromium runs without its sandbox; name an "
                 "ordinary user (e.g. one made with useradd --system)",
                 name);
        return -1;
    }
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    snprintf(out->name, sizeof out->name, "%s", pw.pw_name);
    return 0;
}

/* In a child that has become u: can it enter and write root? Returns 0 or the errno. */
static int probe_as_user(const browser_user_t *u, const char *root) {
    pid_t pid = fork();
    if (pid < 0) return errno;
    if (pid == 0) {
        /* only async-signal-safe calls here: the parent may have threads */
        if (setgroups(0, NULL) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0) _exit(126);
        _exit(access(root, R_OK | W_OK | X_OK) == 0 ? 0 : (errno & 0x7f) ? (errno & 0x7f) : 1);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return errno;
    if (!WIFEXITED(st)) return EINTR;
    return WEXITSTATUS(st) == 126 ? EPERM : WEXITSTATUS(st);
}

int browser_user_prepare_root(const browser_user_t *u, const char *root, char *err, size_t errcap) {
    if (mkdir(root, 0700) == 0 && chown(root, u->uid, u->gid) < 0) {
        snprintf(err, errcap, "--browser-user %s: cannot give %s to that user: %s", u->name, root, strerror(errno));
        return -1;
    }
    int rc = browser_profile_root_check_of(root, false, u->uid);
    if (rc == -EPERM) {
        snprintf(err, errcap, "--browser-user %s: %s is not a directory owned by %s (uid %u); remove it", u->name,
                 root, u->name, (unsigned)u->uid);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errcap, "--browser-user %s: %s: %s", u->name, root, strerror(-rc));
        return -1;
    }
    int e = probe_as_user(u, root);
    if (e) {
        snprintf(err, errcap,
                 "--browser-user %s: that user cannot use %s (%s): every directory above it (TMPDIR) must be "
                 "searchable by it",
                 u->name, root, strerror(e));
        return -1;
    }
    return 0;
}
