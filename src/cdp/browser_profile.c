/* Profile directories: see browser_profile.h. */
#include "core/log.h"
#include "cdp/browser_profile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdp/browser.h"

/* An in-setup profile older than this is garbage even though it is unlocked for a moment in
 * a live supervisor (between mkdir and flock, which takes microseconds). */
#define NEW_PROFILE_GRACE_S 60

int browser_profile_root_check_of(const char *root, bool create, uid_t owner) {
    struct stat st;
    if (!root || !*root) return -EINVAL;
    if (lstat(root, &st) < 0) {
        if (errno != ENOENT) return -errno;
        if (!create) return -ENOENT;
        if (mkdir(root, 0700) < 0 && errno != EEXIST) return -errno;
        if (lstat(root, &st) < 0) return -errno;
    }
    /* /tmp is shared: a symlink or someone else's directory planted under our name would
     * hand them our profiles (cookies, pages) or let us delete their files. */
    if (!S_ISDIR(st.st_mode) || st.st_uid != owner) return -EPERM;
    if ((st.st_mode & 07777) != 0700 && chmod(root, 0700) < 0) return -errno;
    return 0;
}

int browser_profile_root_check(const char *root, bool create) { return browser_profile_root_check_of(root, create, geteuid()); }

int browser_profile_new_name(char *out, size_t cap) {
    if (cap < BROWSER_PROFILE_NAME_LEN + 1) return -ENOSPC;
    unsigned char r[8];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(out, BROWSER_PROFILE_PREFIX, 2);
    for (size_t i = 0; i < sizeof r; i++) {
        out[2 + 2 * i] = hex[r[i] >> 4];
        out[3 + 2 * i] = hex[r[i] & 15];
    }
    out[BROWSER_PROFILE_NAME_LEN] = '\0';
    return 0;
}

bool browser_profile_name_is_final(const char *name) {
    if (strncmp(name, BROWSER_PROFILE_PREFIX, 2) != 0 || strlen(name) != BROWSER_PROFILE_NAME_LEN)
        return false;
    for (const char *p = name + 2; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

bool browser_profile_name_is_new(const char *name) {
    size_t pl = strlen(BROWSER_PROFILE_NEW_PREFIX);
    return strncmp(name, BROWSER_PROFILE_NEW_PREFIX, pl) == 0 && browser_profile_name_is_final(name + pl);
}

/* dir -> parent directory and final name; 0 or -EINVAL. */
static int split_dir(const char *dir, char *parent, size_t parent_cap, const char **name) {
    const char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return -EINVAL;
    size_t pl = (size_t)(slash - dir);
    if (pl >= parent_cap) return -ENAMETOOLONG;
    memcpy(parent, dir, pl);
    parent[pl] = '\0';
    *name = slash + 1;
    return browser_profile_name_is_final(*name) ? 0 : -EINVAL;
}

int browser_profile_create(const char *dir, int *lock_fd) {
    char parent[4096], tmp[4096 + 64];
    const char *name;
    int rc = split_dir(dir, parent, sizeof parent, &name);
    if (rc < 0) return rc;
    *lock_fd = -1;
    struct stat st;
    if (lstat(dir, &st) == 0) return -EEXIST;
    if (snprintf(tmp, sizeof tmp, "%s/" BROWSER_PROFILE_NEW_PREFIX "%s", parent, name) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    if (mkdir(tmp, 0700) < 0) return -errno;

    int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        rc = -errno;
        goto fail;
    }
    static const char *const subdirs[] = {"data", "home", "home/.config", "home/.cache", "tmp"};
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++)
        if (mkdirat(fd, subdirs[i], 0700) < 0) {
            rc = -errno;
            goto fail;
        }
    /* NOREPLACE: a plain rename would silently replace an empty directory of that name. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE) < 0) {
        rc = -errno;
        goto fail;
    }
    *lock_fd = fd;
    return 0;

fail:
    browser_profile_remove(tmp);
    if (fd >= 0) close(fd);
    return rc;
}

/* nftw has no user pointer; the first error of the walk on this thread. */
static _Thread_local int remove_err;

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    int r = (type == FTW_DP || type == FTW_D || type == FTW_DNR) ? rmdir(path) : unlink(path);
    if (r < 0 && errno != ENOENT && remove_err == 0) remove_err = -errno;
    return 0; /* keep going: remove as much as possible */
}

/* A directory we cannot read or search (Chromium never makes one, but a page's download
 * could) would stop the depth-first removal; open them up first. */
static int open_up_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)ftw;
    if ((type == FTW_D || type == FTW_DNR) && (sb->st_mode & 0700) != 0700) chmod(path, (sb->st_mode & 07777) | 0700);
    return 0;
}

int browser_profile_remove(const char *dir) {
    struct stat st;
    if (lstat(dir, &st) < 0) return errno == ENOENT ? 0 : -errno;
    for (int pass = 0; pass < 2; pass++) {
        remove_err = 0;
        if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && remove_err == 0)
            remove_err = errno == ENOENT ? 0 : -errno;
        if (lstat(dir, &st) < 0 && errno == ENOENT) return 0;
        if (pass == 0) nftw(dir, open_up_entry, 16, FTW_PHYS | FTW_MOUNT);
    }
    return remove_err ? remove_err : -ENOTEMPTY;
}

static int remove_one_when_unlocked(const char *dir, int timeout_ms);

int browser_profile_remove_when_unlocked(const char *dir, int timeout_ms) {
    /* A supervisor killed while it set the profile up leaves it under its in-progress name:
     * that one goes too, or it would wait for the next start's stale cleanup. */
    char parent[4096], pending[4096 + 64];
    const char *name;
    int rc_new = 0;
    if (split_dir(dir, parent, sizeof parent, &name) == 0 &&
        snprintf(pending, sizeof pending, "%s/" BROWSER_PROFILE_NEW_PREFIX "%s", parent, name) < (int)sizeof pending)
        rc_new = remove_one_when_unlocked(pending, timeout_ms);
    int rc = remove_one_when_unlocked(dir, timeout_ms);
    return rc < 0 ? rc : rc_new;
}

static int remove_one_when_unlocked(const char *dir, int timeout_ms) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -errno;
    for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0 && waited < timeout_ms; waited += 10) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* Removed even if still locked after the wait: a process that holds the lock that long
     * after its group was SIGKILLed is stuck in the kernel and will not write any more. */
    int rc = browser_profile_remove(dir);
    close(fd);
    return rc;
}

int browser_profile_cleanup_stale(const char *root) { return browser_profile_cleanup_stale_of(root, geteuid()); }

int browser_profile_cleanup_stale_of(const char *root, uid_t owner) {
    int rc = browser_profile_root_check_of(root, false, owner);
    if (rc == -ENOENT) return 0;
    if (rc < 0) return rc;
    DIR *d = opendir(root);
    if (!d) return -errno;
    int removed = 0, first_err = 0;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        bool is_new = browser_profile_name_is_new(de->d_name);
        if (!is_new && !browser_profile_name_is_final(de->d_name)) continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", root, de->d_name) >= (int)sizeof path) continue;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat st;
        bool young = is_new && fstat(fd, &st) == 0 && now - st.st_mtime < NEW_PROFILE_GRACE_S;
        /* Locked = its supervisor or Chromium is alive: a live session. */
        if (young || flock(fd, LOCK_EX | LOCK_NB) < 0) {
            close(fd);
            continue;
        }
        int r = browser_profile_remove(path);
        close(fd);
        if (r == 0) {
            removed++;
            log_event(LOG_INFO, "browser", "browser_stale_profile_removed", "dir=%s", path);
        } else {
            log_event(LOG_ERROR, "browser", "browser_stale_profile_remove_failed", "dir=%s error=\"%s\"", path, strerror(-r));
            if (!first_err) first_err = r;
        }
    }
    closedir(d);
    return first_err ? first_err : removed;
}
