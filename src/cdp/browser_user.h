/* Browsers under a user of their own. Chromium refuses its sandbox as root, so a browserd that
 * runs as root (a container's default, a quick test) would give every page that exploits
 * Chromium the whole machine. With `--browser-user USER` it starts each supervisor, and so
 * each Chromium, as that user instead (libuv's setuid/setgid at spawn, supplementary groups
 * cleared): the sandbox stays on and an exploit gets that user's rights. browserd itself stays
 * root (its listeners, database and the cleanup of a lost supervisor's files need nothing
 * else, but dropping them is the operator's call: run browserd as its own user when you can).
 *
 * The user's profiles live in browser_temp_root_for(uid), "$TMPDIR/browserd-<uid>", created
 * here, owned by that user, mode 0700; every directory above it must be searchable by it.
 *
 * Blocking (getpwnam, mkdir, fork): startup only, before the loop runs. No state is kept. */
#ifndef BROWSERD_CDP_BROWSER_USER_H
#define BROWSERD_CDP_BROWSER_USER_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    uid_t uid;
    gid_t gid; /* the user's primary group */
    char name[64];
} browser_user_t;

/* name: a user name of the password database, or a numeric uid that has an entry there.
 * Returns 0, or -1 with a sentence for the operator in err (unknown user, uid 0, browserd not
 * running as root). */
int browser_user_resolve(const char *name, browser_user_t *out, char *err, size_t errcap);

/* Creates root for u (absent: mkdir 0700 then chown; present: it must be a directory owned
 * by u, not a symlink; its mode is tightened to 0700), then checks from a child process that
 * runs as u that it can enter and write root. Returns 0, or -1 with the reason in err. */
int browser_user_prepare_root(const browser_user_t *u, const char *root, char *err, size_t errcap);

#endif
