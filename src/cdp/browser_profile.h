/* Profile directories of browsers: the temp root's checks, names, creation under a lock,
 * deletion, and the removal of stale ones at browserd's start. Blocking (disk): used by the supervisor process, by
 * browser_profile_cleanup_stale (startup) and on libuv worker threads, never on the loop thread.
 *
 * Layout of one profile, all 0700 and owned by browserd's user:
 *   ROOT/s-<16 hex>/        the lock: flock(LOCK_EX) held by the supervisor and Chromium
 *                 data/     --user-data-dir
 *                 home/     HOME, XDG_CONFIG_HOME (home/.config), XDG_CACHE_HOME (home/.cache),
 *                           and Chromium's working directory
 *                 tmp/      TMPDIR
 * Chromium writes outside --user-data-dir unless told otherwise: crashpad's database goes to
 * $XDG_CONFIG_HOME/chromium/Crash Reports and the singleton socket to $TMPDIR/
 * org.chromium.Chromium.XXXXXX, both left behind when Chromium is killed. Pointing HOME, the
 * XDG dirs and TMPDIR into the profile makes "delete the profile" delete everything. */
#ifndef BROWSERD_CDP_BROWSER_PROFILE_H
#define BROWSERD_CDP_BROWSER_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define BROWSER_PROFILE_PREFIX "s-"
#define BROWSER_PROFILE_NAME_LEN 18 /* "s-" + 16 hex digits */
/* A profile being set up: created, locked, then renamed to its final name, so a concurrent
 * browser_profile_cleanup_stale never sees an unlocked profile under a final name. */
#define BROWSER_PROFILE_NEW_PREFIX ".new-"

/* Makes sure root is a directory owned by the effective uid with mode 0700: creates it
 * (mode 0700) when create is set and it is absent; tightens the mode of our own directory.
 * Returns 0, -ENOENT (absent and !create), -EPERM (a symlink, not a directory, or owned by
 * someone else) or another negative errno. */
int browser_profile_root_check(const char *root, bool create);
/* The same checks for a root that must belong to owner (the browsers' user of --browser-user,
 * checked by a root browserd); create makes it with browserd's owner, so such a caller
 * creates and chowns it itself first. */
int browser_profile_root_check_of(const char *root, bool create, uid_t owner);

/* A fresh random name "s-<16 hex>" into out (cap >= BROWSER_PROFILE_NAME_LEN + 1). */
int browser_profile_new_name(char *out, size_t cap);

/* Whether name is one browserd creates (final or in-setup form), and which. */
bool browser_profile_name_is_final(const char *name);
bool browser_profile_name_is_new(const char *name);

/* Creates dir (= root/<final name>) with its subdirectories, via the in-setup name, and
 * returns in *lock_fd an O_CLOEXEC descriptor of dir holding flock(LOCK_EX). Fails with -EEXIST
 * if dir exists (a profile is always fresh). On failure nothing is left behind. */
int browser_profile_create(const char *dir, int *lock_fd);

/* Deletes dir and everything in it, never following symlinks or crossing mounts. Returns 0
 * (also when dir does not exist) or the negative errno of the first failure. */
int browser_profile_remove(const char *dir);

/* For browserd's own cleanup after a lost supervisor: waits up to timeout_ms for the lock
 * (Chromium's main process may still be dying), then removes dir, and its in-progress twin
 * (BROWSER_PROFILE_NEW_PREFIX + its name) when the supervisor died while setting it up. */
int browser_profile_remove_when_unlocked(const char *dir, int timeout_ms);

/* Removes the profile directories under root left by dead supervisors (a profile is in use
 * exactly while its supervisor or Chromium holds the flock on it, so a reused pid cannot
 * keep garbage alive, and a live session is never touched). Only names browserd creates are
 * considered. Blocking (disk): call it at startup before the loop runs, or on a worker.
 * Returns the number of directories removed, 0 if root does not exist, or a negative errno
 * (-EPERM: root is not a directory owned by us with mode 0700). */
int browser_profile_cleanup_stale(const char *root);
/* The same for a root that belongs to owner (the browsers' user of --browser-user; browserd,
 * as root, may remove their profiles). */
int browser_profile_cleanup_stale_of(const char *root, uid_t owner);

#endif
