#include "cli/db_copy.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_copy.h"

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2

const char *cli_db_copy_usage(void) {
    return "  db copy --from PATH --to URI      copy a SQLite database (customers, keys, zones, sessions) into a\n"
           "                                    PostgreSQL one (postgresql://...): all or nothing; an interrupted\n"
           "                                    copy started again goes on where it stopped; prints a summary\n";
}

static int usage(const char *what) {
    fprintf(stderr, "browserd: db copy: %s\nusage:\n%s", what, cli_db_copy_usage());
    return EXIT_USAGE;
}

/* The progress line, rewritten in place (carriage return), on a terminal only: a log or a
 * pipe gets the summary alone. */
static void progress(void *ctx, int64_t staged, int64_t total) {
    (void)ctx;
    if (!isatty(STDERR_FILENO)) return;
    int pct = total > 0 ? (int)(staged * 100 / total) : 100;
    fprintf(stderr, "\rbrowserd: db copy: %" PRId64 " of %" PRId64 " sessions staged (%d%%)", staged, total, pct);
    if (staged >= total) fputc('\n', stderr);
    fflush(stderr);
}

/* The identity of the source file under which the destination keeps its progress: its path
 * and its inode, so that another file at the same path starts afresh. */
static int source_identity(const char *path, char *out, size_t cap) {
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(path, real) || stat(real, &st) != 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -EINVAL;
    snprintf(out, cap, "sqlite:%s:%ju:%ju", real, (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    return 0;
}

int cli_db_copy_run(int argc, char **argv) {
    const char *from = NULL, *to = NULL;
    for (int i = 0; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--from") == 0 ? &from : strcmp(argv[i], "--to") == 0 ? &to : NULL;
        if (!slot) return usage("unknown argument (expected --from PATH --to URI)");
        if (i + 1 >= argc || !argv[i + 1][0]) return usage("--from and --to each take a value");
        *slot = argv[++i];
    }
    if (!from || !to) return usage("both --from PATH and --to URI are needed");
    if (store_target_is_postgres(from)) return usage("--from is a SQLite file (a PostgreSQL source is not supported)");
    if (!store_target_is_postgres(to)) return usage("--to is a PostgreSQL URI (postgresql://...)");
    char shown[512], source_id[PATH_MAX + 64];
    store_uri_redact(to, shown, sizeof shown);
    /* The source is read, never created: a mistyped path must not become an empty database. */
    int rc = source_identity(from, source_id, sizeof source_id);
    if (rc != 0) {
        fprintf(stderr, "browserd: db copy: %s: %s\n", from, rc == -EINVAL ? "not a file" : strerror(-rc));
        return EXIT_FAILED;
    }
    store_t *src = NULL, *dst = NULL;
    char err[512] = "";
    if (store_open(from, &src, err, sizeof err) != 0 || store_open(to, &dst, err, sizeof err) != 0) {
        fprintf(stderr, "browserd: db copy: %s\n", err);
        store_close(src);
        return EXIT_FAILED;
    }
    /* BROWSERD_COPY_CHUNK: sessions per staging transaction (a tuning knob, and the tests' way
     * to interrupt a small copy midway) */
    const char *chunk_env = getenv("BROWSERD_COPY_CHUNK");
    size_t chunk = chunk_env ? (size_t)strtoul(chunk_env, NULL, 10) : 0;
    store_copy_stats_t st;
    rc = store_copy(src, dst, source_id, chunk, progress, NULL, &st, err, sizeof err);
    store_close(src);
    store_close(dst);
    if (rc == -EEXIST) {
        fprintf(stderr, "browserd: db copy: refused, nothing was written to %s: %s\n", shown, err);
        return EXIT_FAILED;
    }
    if (rc != 0) {
        fprintf(stderr, "browserd: db copy: %s (what was staged stays: run the same command again to go on)\n", err);
        return EXIT_FAILED;
    }
    printf("customers\t%" PRId64 "\t%" PRId64 " new\n", st.customers, st.customers_new);
    printf("keys\t%" PRId64 "\t%" PRId64 " new\n", st.keys, st.keys_new);
    printf("zones\t%" PRId64 "\t%" PRId64 " new\n", st.zones, st.zones_new);
    printf("sessions\t%" PRId64 "\t%" PRId64 " new\n", st.sessions, st.sessions_new);
    fprintf(stderr, "browserd: db copy: %s copied into %s%s\n", from, shown,
            st.resumed ? " (resumed: an earlier run had staged part of the sessions)" : "");
    if (st.resumed) fprintf(stderr, "browserd: db copy: %" PRId64 " sessions were staged by the earlier run\n", st.resumed);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "browserd: db copy: cannot write to standard output: %s\n", strerror(errno));
        return EXIT_FAILED;
    }
    return EXIT_OK;
}
