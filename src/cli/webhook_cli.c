#include "cli/webhook_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "store/store_webhooks.h"
#include "webhook/webhook_url.h"

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define DELIVERIES_DEFAULT 100
#define DELIVERIES_MAX 100000
#define MAX_ALLOW 64

const char *cli_webhook_usage(void) {
    return "  webhook add CUSTOMER_ID URL [--allow-private CIDR]...\n"
           "                                    POST each ended session of the customer to URL (http:// or\n"
           "                                    https://);\n"
           "                                    prints the signing secret (shown only this once); a URL whose\n"
           "                                    host is a private address is refused unless a range covers it\n"
           "  webhook list CUSTOMER_ID          <webhook_id> TAB <created> TAB <url>, oldest first\n"
           "  webhook remove WEBHOOK_ID         remove it and its deliveries not made yet; prints the id\n"
           "  webhook deliveries CUSTOMER_ID [--limit N]\n"
           "                                    the last N (default 100) deliveries, oldest first: <delivery_id>\n"
           "                                    TAB <webhook_id> TAB <session_id> TAB <pending|delivered|failed>\n"
           "                                    TAB <attempts> TAB <last HTTP status|-> TAB <created> TAB <next\n"
           "                                    attempt|done> TAB <last error|->\n";
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
    fputs(cli_webhook_usage(), stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static int finish_output(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        message("cannot write to standard output: %s", strerror(errno));
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

static int open_store(const char *db_path, store_t **store) {
    char err[512] = "";
    if (!db_path || !*db_path) return usage_error("no database given (--db)");
    if (store_open(db_path, store, err, sizeof err) != 0) {
        message("%s", err);
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

/* The guard of the --allow-private options given here and of BROWSERD_ALLOW_PRIVATE (the
 * serve option's twin: a daemon run with it delivers there, so adding there must work too). */
static int guard_of(int argc, char **argv, int first, proxy_guard_t *guard) {
    const char *allow[MAX_ALLOW];
    size_t n = 0;
    char env[1024] = "";
    const char *e = getenv("BROWSERD_ALLOW_PRIVATE");
    if (e && *e) {
        snprintf(env, sizeof env, "%s", e);
        for (char *save = NULL, *tok = strtok_r(env, ",", &save); tok && n < MAX_ALLOW; tok = strtok_r(NULL, ",", &save))
            allow[n++] = tok;
    }
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--allow-private") != 0 || i + 1 >= argc)
            return usage_error("unknown or incomplete option \"%s\"", argv[i]);
        if (n == MAX_ALLOW) return usage_error("at most %d --allow-private ranges", MAX_ALLOW);
        allow[n++] = argv[++i];
    }
    char err[256];
    if (webhook_url_guard(allow, n, guard, err, sizeof err) != 0) return usage_error("%s", err);
    return EXIT_OK;
}

static int webhook_add(const char *db_path, int argc, char **argv) {
    if (argc < 2) return usage_error("\"webhook add\" takes CUSTOMER_ID URL");
    const char *customer = argv[0], *url = argv[1];
    if (!store_valid_customer_id(customer))
        return usage_error("invalid customer id \"%s\" (expected [a-z0-9_]{1,32})", customer);
    proxy_guard_t guard;
    int rc = guard_of(argc, argv, 2, &guard);
    if (rc != EXIT_OK) return rc;
    char err[512] = "";
    webhook_url_t parsed;
    if (webhook_url_parse(url, &parsed, err, sizeof err) != 0) return usage_error("invalid webhook URL: %s", err);
    int vet = webhook_url_vet(url, &guard, err, sizeof err);
    if (vet == -EACCES || vet == -EINVAL) {
        message("refused: %s", err);
        return EXIT_FAILED;
    }
    store_t *s = NULL;
    if ((rc = open_store(db_path, &s)) != EXIT_OK) return rc;
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    char serr[512] = "";
    if (store_webhook_add(s, customer, url, id, secret, serr, sizeof serr) != 0) {
        message("%s", serr);
        store_close(s);
        return EXIT_FAILED;
    }
    store_close(s);
    /* A name that does not resolve now may later (a receiver not deployed yet): added, and
     * the delivery resolves and checks it again each time. */
    if (vet != 0) message("warning: %s (the webhook is added; deliveries retry until it resolves)", err);
    message("webhook %s added", id);
    printf("%s\n", secret);
    return finish_output();
}

static int webhook_list(store_t *s, const char *customer) {
    store_webhook_info_t *items = NULL;
    size_t n = 0;
    int rc = store_webhook_list(s, customer, &items, &n);
    if (rc == -ENOENT) {
        message("unknown customer %s", customer);
        return EXIT_FAILED;
    }
    if (rc != 0) {
        message("cannot list webhooks: %s", strerror(-rc));
        return EXIT_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        char created[TIME_UTC_SECONDS_LEN + 1];
        time_format_utc_seconds(items[i].created_ms, created);
        printf("%s\t%s\t%s\n", items[i].webhook_id, created, items[i].url);
    }
    free(items);
    return finish_output();
}

static int webhook_remove(store_t *s, const char *id) {
    int rc = store_webhook_remove(s, id);
    if (rc == -ENOENT) {
        message("unknown webhook %s", id);
        return EXIT_FAILED;
    }
    if (rc != 0) {
        message("cannot remove %s: %s", id, strerror(-rc));
        return EXIT_FAILED;
    }
    printf("%s\n", id);
    return finish_output();
}

static const char *state_name(store_delivery_state_t st) {
    return st == STORE_DELIVERY_DELIVERED ? "delivered" : st == STORE_DELIVERY_FAILED ? "failed" : "pending";
}

static int webhook_deliveries(store_t *s, const char *customer, size_t limit) {
    store_delivery_info_t *items = NULL;
    size_t n = 0;
    int rc = store_webhook_deliveries(s, customer, limit, &items, &n);
    if (rc == -ENOENT) {
        message("unknown customer %s", customer);
        return EXIT_FAILED;
    }
    if (rc != 0) {
        message("cannot list deliveries: %s", strerror(-rc));
        return EXIT_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        const store_delivery_info_t *d = &items[i];
        char created[TIME_UTC_SECONDS_LEN + 1], when[TIME_UTC_SECONDS_LEN + 1], status[16];
        time_format_utc_seconds(d->created_ms, created);
        time_format_utc_seconds(d->state == STORE_DELIVERY_PENDING ? d->next_attempt_ms : d->done_ms, when);
        snprintf(status, sizeof status, "%d", d->last_status);
        printf("%s\t%s\t%s\t%s\t%" PRId64 "\t%s\t%s\t%s\t%s\n", d->delivery_id, d->webhook_id, d->session_id,
               state_name(d->state), d->attempts, d->last_status ? status : "-", created, when,
               d->last_error[0] ? d->last_error : "-");
    }
    free(items);
    return finish_output();
}

int cli_webhook_run(const char *db_path, int argc, char **argv) {
    const char *verb = argc >= 1 ? argv[0] : "";
    char **args = argv + 1;
    int nargs = argc - 1;
    if (strcmp(verb, "add") == 0) return webhook_add(db_path, nargs, args);
    size_t limit = DELIVERIES_DEFAULT;
    if (strcmp(verb, "list") == 0 || strcmp(verb, "remove") == 0) {
        if (nargs != 1) return usage_error("\"webhook %s\" takes 1 argument", verb);
    } else if (strcmp(verb, "deliveries") == 0) {
        if (nargs == 3 && strcmp(args[1], "--limit") == 0) {
            char *end = NULL;
            long long v = strtoll(args[2], &end, 10);
            if (!*args[2] || *end || v < 1 || v > DELIVERIES_MAX)
                return usage_error("--limit takes a number from 1 to %d", DELIVERIES_MAX);
            limit = (size_t)v;
        } else if (nargs != 1) {
            return usage_error("\"webhook deliveries\" takes CUSTOMER_ID [--limit N]");
        }
    } else {
        return usage_error(*verb ? "unknown command \"webhook %s\"" : "webhook needs a command%s", verb);
    }
    if (strcmp(verb, "remove") == 0 && !store_valid_webhook_id(args[0]))
        return usage_error("invalid webhook id \"%s\" (expected wh_ and 12 hex digits)", args[0]);
    if (strcmp(verb, "remove") != 0 && !store_valid_customer_id(args[0]))
        return usage_error("invalid customer id \"%s\" (expected [a-z0-9_]{1,32})", args[0]);
    store_t *s = NULL;
    int rc = open_store(db_path, &s);
    if (rc != EXIT_OK) return rc;
    if (strcmp(verb, "list") == 0) rc = webhook_list(s, args[0]);
    else if (strcmp(verb, "remove") == 0) rc = webhook_remove(s, args[0]);
    else rc = webhook_deliveries(s, args[0], limit);
    store_close(s);
    return rc;
}
