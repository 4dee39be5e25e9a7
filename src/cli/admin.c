#include "cli/admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/db_copy.h"
#include "cli/webhook_cli.h"
#include "core/timeutil.h"
#include "store/session_import.h"
#include "proxy/proxy_upstream.h"
#include "store/store.h"

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2
/* The API's own records are a few hundred bytes; a line this long is not one of them, and
 * stopping at it keeps a wrong file (a binary, a dump on one line) from being parsed.
 * getline still reads such a line whole: memory grows with the longest line read. */
#define IMPORT_LINE_MAX (1024 * 1024)

const char *cli_admin_usage(void) {
    return "  customer add ID                   add a customer (ID: [a-z0-9_]{1,32}); prints the id\n"
           "  key add CUSTOMER_ID               create an API key; prints the key (shown only this once)\n"
           "  key list CUSTOMER_ID              list keys, oldest first: <key_id> TAB <created> TAB <active|revoked>\n"
           "  key revoke KEY_ID                 revoke a key; prints the key id\n"
           "  zone add CUSTOMER_ID ZONE         add a zone (ZONE: [a-z0-9_]{1,64}); prints its password (shown only this once)\n"
           "  zone set-proxy CUSTOMER_ID ZONE URL\n"
           "                                    send the zone's browser traffic through an upstream proxy\n"
           "                                    (http://[user:pass@]host:port; 'none' removes it); prints it, password hidden\n"
           "  sessions import CUSTOMER_ID FILE  import session records, one JSON object a line (FILE or - for stdin),\n"
           "                                    all or nothing; prints the number imported (see docs/import.md)\n";
}

__attribute__((format(printf, 1, 2))) static void message(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("browserd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("browserd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nusage:\n", stderr);
    fputs(cli_admin_usage(), stderr);
    fputs(cli_webhook_usage(), stderr);
    fputs(cli_db_copy_usage(), stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* What was printed must also have reached its destination (a full disk, a closed pipe):
 * a script reading the new key must not get a silent half. */
static int finish_output(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        message("cannot write to standard output: %s", strerror(errno));
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

static bool valid_key_id_text(const char *s) {
    if (strlen(s) != STORE_KEY_ID_LEN || strncmp(s, "key_", 4) != 0) return false;
    for (const char *p = s + 4; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

static int open_store(const char *db_path, store_t **store) {
    char err[512] = "";
    if (store_open(db_path, store, err, sizeof err) != 0) {
        message("%s", err);
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

/* ---- commands (arguments already checked) ---- */

static int customer_add(store_t *s, const char *customer_id) {
    char err[512] = "";
    if (store_customer_add(s, customer_id, err, sizeof err) != 0) {
        message("%s", err);
        return EXIT_FAILED;
    }
    printf("%s\n", customer_id);
    return finish_output();
}

static int key_add(store_t *s, const char *customer_id) {
    char err[512] = "", key[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1];
    if (store_key_add(s, customer_id, key, key_id, err, sizeof err) != 0) {
        message("%s", err);
        return EXIT_FAILED;
    }
    printf("%s\n", key);
    return finish_output();
}

static int key_list(store_t *s, const char *customer_id) {
    store_key_info_t *keys = NULL;
    size_t count = 0;
    int rc = store_key_list(s, customer_id, &keys, &count);
    if (rc == -ENOENT) {
        message("unknown customer %s", customer_id);
        return EXIT_FAILED;
    }
    if (rc != 0) {
        message("cannot list keys: %s", strerror(-rc));
        return EXIT_FAILED;
    }
    for (size_t i = 0; i < count; i++) {
        char created[TIME_UTC_SECONDS_LEN + 1];
        time_format_utc_seconds(keys[i].created_ms, created);
        printf("%s\t%s\t%s\n", keys[i].key_id, created, keys[i].revoked ? "revoked" : "active");
    }
    free(keys);
    return finish_output();
}

static int key_revoke(store_t *s, const char *key_id) {
    int rc = store_key_revoke(s, key_id);
    if (rc == -ENOENT) {
        message("unknown key %s", key_id);
        return EXIT_FAILED;
    }
    if (rc != 0) {
        message("cannot revoke %s: %s", key_id, strerror(-rc));
        return EXIT_FAILED;
    }
    printf("%s\n", key_id);
    return finish_output();
}

static int zone_add(store_t *s, const char *customer_id, const char *zone) {
    char err[512] = "", password[STORE_PASSWORD_LEN + 1];
    if (store_zone_add(s, customer_id, zone, password, err, sizeof err) != 0) {
        message("%s", err);
        return EXIT_FAILED;
    }
    printf("%s\n", password);
    return finish_output();
}

/* Prints what was set: the URL without its password, which stays out of terminals and logs. */
static int zone_set_proxy(store_t *s, const char *customer_id, const char *zone, const char *url) {
    bool clear = strcmp(url, "none") == 0;
    int rc = store_zone_set_upstream(s, customer_id, zone, clear ? NULL : url);
    if (rc == -ENOENT) {
        message("no zone \"%s\" for customer \"%s\"", zone, customer_id);
        return EXIT_FAILED;
    }
    if (rc != 0) {
        message("could not set the upstream proxy: %s", strerror(-rc));
        return EXIT_FAILED;
    }
    if (clear) {
        printf("none\n");
    } else {
        proxy_upstream_t up;
        char err[256];
        if (proxy_upstream_parse(url, &up, err, sizeof err) == 0)
            printf("http://%s%s%s:%u\n", up.has_credentials ? up.user : "", up.has_credentials ? ":***@" : "", up.host,
                   (unsigned)up.port);
    }
    return finish_output();
}

typedef struct {
    FILE *in;
    char *line; /* getline's buffer, reused for every line */
    size_t line_cap;
    int64_t line_no;      /* of the line most recently read */
    int64_t records;      /* records produced */
    /* For each blank line: how many records came before it. A record's line is then its
     * index + 1 + the blank lines before it, without a line number kept per record. */
    int64_t *blanks;
    size_t nblanks, blanks_cap;
    bool source_failed;   /* the error in err is ours (it names the line already) */
} import_source_t;

/* The line of the record with this index (0-based). */
static int64_t line_of_record(const import_source_t *src, int64_t index) {
    int64_t line = index + 1;
    for (size_t i = 0; i < src->nblanks && src->blanks[i] <= index; i++) line++;
    return line;
}

static int note_blank(import_source_t *src) {
    if (src->nblanks == src->blanks_cap) {
        size_t cap = src->blanks_cap ? src->blanks_cap * 2 : 16;
        int64_t *grown = realloc(src->blanks, cap * sizeof *grown);
        if (!grown) return -1;
        src->blanks = grown;
        src->blanks_cap = cap;
    }
    src->blanks[src->nblanks++] = src->records;
    return 0;
}

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

static int next_record(void *ctx, session_record_t *rec, char *err, size_t err_cap) {
    import_source_t *src = ctx;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&src->line, &src->line_cap, src->in);
        if (n < 0) {
            /* Only the end of the file ends the records: getline also fails without setting
             * the stream's error flag when it cannot grow its buffer (ENOMEM), and taking that
             * for the end would commit the lines read so far as the whole import. */
            if (feof(src->in) && !ferror(src->in)) return 0;
            snprintf(err, err_cap, "line %" PRId64 ": cannot read: %s", src->line_no + 1,
                     strerror(errno ? errno : EIO));
            src->source_failed = true;
            return -1;
        }
        src->line_no++;
        const char *text = src->line;
        size_t len = (size_t)n;
        if (len > 0 && text[len - 1] == '\n') len--;
        /* Some editors start a UTF-8 file with a byte order mark; it is not part of the data. */
        if (src->line_no == 1 && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) text += 3, len -= 3;
        char reason[400];
        if (is_blank(text, len)) {
            if (note_blank(src) == 0) continue;
            snprintf(reason, sizeof reason, "out of memory");
        } else if (len > IMPORT_LINE_MAX) {
            snprintf(reason, sizeof reason, "longer than %d bytes", IMPORT_LINE_MAX);
        } else if (session_import_parse_line(text, len, rec, reason, sizeof reason) == 0) {
            src->records++;
            return 1;
        }
        snprintf(err, err_cap, "line %" PRId64 ": %s", src->line_no, reason);
        src->source_failed = true;
        return -1;
    }
}

static int sessions_import(store_t *s, const char *customer_id, const char *path) {
    import_source_t src = {.in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r")};
    if (!src.in) {
        message("cannot open %s: %s", path, strerror(errno));
        return EXIT_FAILED;
    }
    char err[512] = "";
    int64_t imported = 0, refused = -1;
    int rc = store_sessions_import_at(s, customer_id, next_record, &src, &imported, &refused, err, sizeof err);
    free(src.line);
    if (src.in != stdin) fclose(src.in);
    int64_t line = rc == -EEXIST && refused >= 0 ? line_of_record(&src, refused) : src.line_no;
    free(src.blanks);
    if (rc != 0) {
        /* The store names the session but cannot know the line; we can: an invalid record is
         * the line read last; a duplicate is the record the store names by its index (a store
         * may read every record before it finds it). */
        if (src.source_failed) message("%s", err);
        else if (rc == -EEXIST || rc == -EINVAL) message("line %" PRId64 ": %s", line, err);
        else message("%s", err);
        return EXIT_FAILED;
    }
    printf("%" PRId64 "\n", imported);
    return finish_output();
}

/* ---- dispatch ---- */

static int check_customer_arg(const char *customer_id) {
    if (!store_valid_customer_id(customer_id))
        return usage_error("invalid customer id \"%s\" (expected [a-z0-9_]{1,32})", customer_id);
    return EXIT_OK;
}

int cli_admin_run(const char *db_path, int argc, char **argv) {
    if (argc < 1 || !argv || !argv[0]) return usage_error("no command given");
    const char *noun = argv[0], *verb = argc >= 2 ? argv[1] : "";
    /* db copy names both of its databases itself (--from, --to); --db plays no part */
    if (strcmp(noun, "db") == 0 && strcmp(verb, "copy") == 0) return cli_db_copy_run(argc - 2, argv + 2);
    if (strcmp(noun, "webhook") == 0) return cli_webhook_run(db_path, argc - 1, argv + 1);
    enum { CUSTOMER_ADD, KEY_ADD, KEY_LIST, KEY_REVOKE, ZONE_ADD, ZONE_SET_PROXY, SESSIONS_IMPORT } command;
    int want_args; /* after noun and verb */
    if (strcmp(noun, "customer") == 0 && strcmp(verb, "add") == 0) command = CUSTOMER_ADD, want_args = 1;
    else if (strcmp(noun, "key") == 0 && strcmp(verb, "add") == 0) command = KEY_ADD, want_args = 1;
    else if (strcmp(noun, "key") == 0 && strcmp(verb, "list") == 0) command = KEY_LIST, want_args = 1;
    else if (strcmp(noun, "key") == 0 && strcmp(verb, "revoke") == 0) command = KEY_REVOKE, want_args = 1;
    else if (strcmp(noun, "zone") == 0 && strcmp(verb, "add") == 0) command = ZONE_ADD, want_args = 2;
    else if (strcmp(noun, "zone") == 0 && strcmp(verb, "set-proxy") == 0) command = ZONE_SET_PROXY, want_args = 3;
    else if (strcmp(noun, "sessions") == 0 && strcmp(verb, "import") == 0) command = SESSIONS_IMPORT, want_args = 2;
    else if (argc >= 2) return usage_error("unknown command \"%s %s\"", noun, verb);
    else return usage_error("unknown command \"%s\"", noun);
    if (argc != 2 + want_args)
        return usage_error("\"%s %s\" takes %d argument%s", noun, verb, want_args, want_args == 1 ? "" : "s");
    char **args = argv + 2;

    int rc = EXIT_OK;
    switch (command) {
    case CUSTOMER_ADD:
    case KEY_ADD:
    case KEY_LIST:
    case ZONE_ADD:
    case ZONE_SET_PROXY:
    case SESSIONS_IMPORT: rc = check_customer_arg(args[0]); break;
    case KEY_REVOKE:
        if (!valid_key_id_text(args[0])) rc = usage_error("invalid key id \"%s\" (expected key_ and 12 hex digits)", args[0]);
        break;
    }
    if (rc == EXIT_OK && command == ZONE_SET_PROXY && strcmp(args[2], "none") != 0) {
        proxy_upstream_t up;
        char err[256];
        if (proxy_upstream_parse(args[2], &up, err, sizeof err) < 0)
            rc = usage_error("invalid upstream proxy URL: %s (expected http://[user:pass@]host:port, or none)", err);
    }
    if (rc == EXIT_OK && (command == ZONE_ADD || command == ZONE_SET_PROXY) && !store_valid_zone_name(args[1]))
        rc = usage_error("invalid zone name \"%s\" (expected [a-z0-9_]{1,64})", args[1]);
    if (rc == EXIT_OK && command == SESSIONS_IMPORT && args[1][0] == '\0') rc = usage_error("empty file name");
    if (rc == EXIT_OK && (!db_path || !*db_path)) rc = usage_error("no database given (--db)");
    if (rc != EXIT_OK) return rc;

    store_t *store = NULL;
    if ((rc = open_store(db_path, &store)) != EXIT_OK) return rc;
    switch (command) {
    case CUSTOMER_ADD: rc = customer_add(store, args[0]); break;
    case KEY_ADD: rc = key_add(store, args[0]); break;
    case KEY_LIST: rc = key_list(store, args[0]); break;
    case KEY_REVOKE: rc = key_revoke(store, args[0]); break;
    case ZONE_ADD: rc = zone_add(store, args[0], args[1]); break;
    case ZONE_SET_PROXY: rc = zone_set_proxy(store, args[0], args[1], args[2]); break;
    case SESSIONS_IMPORT: rc = sessions_import(store, args[0], args[1]); break;
    }
    store_close(store);
    return rc;
}
