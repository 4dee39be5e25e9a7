/* browserd: the command line, and the lifecycle of the daemon (`serve`). */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/api.h"
#include "catalog/catalog.h"
#include "cdp/browser.h"
#include "cli/admin.h"
#include "core/timeutil.h"
#include "http/http_server.h"
#include "store/store.h"

#define DEFAULT_DB "./browserd.db"
#define DEFAULT_API_LISTEN "127.0.0.1:8080"
#define DEFAULT_CUSTOMER "default"
#define DEFAULT_ZONE "scraping_browser1"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: browserd [--db PATH] COMMAND [ARGS]\n"
            "\n"
            "browserd records browser sessions and lists them through a REST API compatible\n"
            "with the Browser Sessions API (GET /browser_sessions).\n"
            "\n"
            "Commands:\n"
            "  serve [--api-listen HOST:PORT]\n"
            "      Run the daemon. The API listens on HOST:PORT (default " DEFAULT_API_LISTEN ").\n"
            "      On a fresh database it first creates customer '" DEFAULT_CUSTOMER "', its zone\n"
            "      '" DEFAULT_ZONE "' and an API key, and prints them once on stdout.\n"
            "      SIGTERM or SIGINT stops it gracefully.\n"
            "%s"
            "\n"
            "Options:\n"
            "  --db PATH        SQLite database file (default " DEFAULT_DB "; created if absent)\n"
            "  -h, --help       show this help\n"
            "  --version        show the version\n"
            "\n"
            "Environment (each the twin of an option; the option wins):\n"
            "  BROWSERD_DB          --db\n"
            "  BROWSERD_API_LISTEN  --api-listen\n"
            "  UV_THREADPOOL_SIZE   worker threads for database work (default 4)\n"
            "\n"
            "Exit status: 0 ok, 1 failure, 2 usage error.\n",
            cli_admin_usage());
}

/* "HOST:PORT", "[v6]:PORT". Returns 0, or -1 when malformed. */
static int parse_listen(const char *s, char *host, size_t host_cap, int *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return -1;
    const char *h = s, *h_end = colon;
    if (*h == '[') {
        if (h_end[-1] != ']') return -1;
        h++;
        h_end--;
    }
    size_t hl = (size_t)(h_end - h);
    if (hl == 0 || hl >= host_cap) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p < 0 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

typedef struct {
    uv_signal_t sigint, sigterm;
    http_server_t *api_server;
    bool stopping;
} daemon_t;

static void on_api_stopped(void *arg) {
    daemon_t *d = arg;
    d->api_server = NULL;
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
    daemon_t *d = h->data;
    if (d->stopping) return;
    d->stopping = true;
    fprintf(stderr, "event=stopping signal=%s\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
    http_server_stop(d->api_server, on_api_stopped, d);
}

/* On a fresh database: the default customer, zone and key, printed once. */
static int bootstrap(store_t *store) {
    int64_t customers = 0;
    int rc = store_customer_count(store, &customers);
    if (rc < 0 || customers > 0) return rc;
    char err[256] = "", key[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1], pw[STORE_PASSWORD_LEN + 1];
    if ((rc = store_customer_add(store, DEFAULT_CUSTOMER, err, sizeof err)) < 0 ||
        (rc = store_zone_add(store, DEFAULT_CUSTOMER, DEFAULT_ZONE, pw, err, sizeof err)) < 0 ||
        (rc = store_key_add(store, DEFAULT_CUSTOMER, key, key_id, err, sizeof err)) < 0) {
        fprintf(stderr, "browserd: cannot create the default customer: %s\n", err);
        return rc;
    }
    fprintf(stderr, "browserd: new database: created customer '%s', zone '%s' and an API key "
                    "(shown once; store them now)\n", DEFAULT_CUSTOMER, DEFAULT_ZONE);
    printf("customer_id=%s\napi_key=%s\nzone=%s\nzone_password=%s\n", DEFAULT_CUSTOMER, key, DEFAULT_ZONE, pw);
    fflush(stdout);
    return 0;
}

static int serve(const char *db, int argc, char **argv) {
    const char *listen = getenv("BROWSERD_API_LISTEN");
    if (!listen || !*listen) listen = DEFAULT_API_LISTEN;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--api-listen") == 0 && i + 1 < argc) listen = argv[++i];
        else if (strncmp(argv[i], "--api-listen=", 13) == 0) listen = argv[i] + 13;
        else {
            fprintf(stderr, "browserd: serve: unknown or incomplete option '%s' (see browserd --help)\n", argv[i]);
            return 2;
        }
    }
    char host[256];
    int port;
    if (parse_listen(listen, host, sizeof host, &port) < 0) {
        fprintf(stderr, "browserd: --api-listen: expected HOST:PORT, got '%s'\n", listen);
        return 2;
    }

    int exit_code = 1;
    store_t *store = NULL;
    catalog_t *catalog = NULL;
    api_t *api = NULL;
    char err[512] = "";
    uv_loop_t *loop = uv_default_loop();
    daemon_t d = {0};

    if (store_open(db, &store, err, sizeof err) < 0) {
        fprintf(stderr, "browserd: cannot open database %s: %s\n", db, err);
        goto cleanup;
    }
    if (bootstrap(store) < 0) goto cleanup;
    catalog = catalog_new();
    if (!catalog) goto cleanup;
    /* The first load happens before the loop runs, so it may block. */
    int64_t t0 = time_now_ms();
    int rc = catalog_sync(catalog, store);
    if (rc < 0) {
        fprintf(stderr, "browserd: cannot load sessions: %s\n", strerror(-rc));
        goto cleanup;
    }
    fprintf(stderr, "event=catalog_loaded sessions=%zu ms=%lld\n", catalog_size(catalog),
            (long long)(time_now_ms() - t0));

    api_config_t acfg = {.loop = loop, .store = store, .catalog = catalog};
    if (api_new(&acfg, &api) < 0) goto cleanup;
    http_server_config_t hcfg;
    http_server_config_defaults(&hcfg);
    hcfg.host = host;
    hcfg.port = port;
    rc = http_server_start(loop, &hcfg, api_handle, api, &d.api_server);
    if (rc < 0) {
        fprintf(stderr, "browserd: cannot listen on %s: %s\n", listen, uv_strerror(rc));
        goto cleanup;
    }
    uv_signal_init(loop, &d.sigint);
    uv_signal_init(loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    fprintf(stderr, "event=listening api=http://%s%s%s:%d db=%s\n", strchr(host, ':') ? "[" : "", host,
            strchr(host, ':') ? "]" : "", http_server_port(d.api_server), db);
    uv_run(loop, UV_RUN_DEFAULT);
    fprintf(stderr, "event=stopped\n");
    exit_code = 0;

cleanup:
    uv_loop_close(loop);
    api_free(api);
    catalog_free(catalog);
    if (store) store_close(store);
    return exit_code;
}

int main(int argc, char **argv) {
    /* Hidden mode: browserd re-executes itself as the supervisor of one Chromium (see
     * src/cdp/supervisor.h); not a user command, so it bypasses the option parsing below. */
    if (argc > 1 && strcmp(argv[1], BROWSER_SUPERVISOR_COMMAND) == 0) return browser_supervisor_main(argc, argv);
    signal(SIGPIPE, SIG_IGN); /* a client that goes away must not kill the daemon */
    const char *db = getenv("BROWSERD_DB");
    if (!db || !*db) db = DEFAULT_DB;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("browserd 0.1.0\n");
            return 0;
        }
        if (strcmp(argv[i], "--db") == 0) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                fprintf(stderr, "browserd: --db needs a PATH\n");
                return 2;
            }
            db = argv[++i];
        } else if (strncmp(argv[i], "--db=", 5) == 0 && argv[i][5]) {
            db = argv[i] + 5;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "browserd: unknown option '%s' (see browserd --help)\n", argv[i]);
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    for (int k = i + 1; k < argc; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    if (strcmp(argv[i], "serve") == 0) return serve(db, argc - i, argv + i);
    return cli_admin_run(db, argc - i, argv + i);
}
