/* The API over real HTTP: a real http_server with api_handle on a loopback port, a real SQLite
 * store in a temporary directory and a real catalog. The libuv loop runs in its own thread (the
 * API's queries run on its worker threads, as in the daemon); the test thread is a blocking
 * client. The end_session callback stands in for the gateway: it records what it was asked
 * and answers what the test says. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "catalog/catalog_sync.h"
#include "core/uuid.h"

#define WAIT_SECONDS 10
#define T0_MS INT64_C(1764547200000) /* 2025-12-01T00:00:00Z */

#define ID_S1 "0192f5e8-0000-7000-8000-000000000001"
#define ID_S2 "0192f5e8-0000-7000-8000-000000000002"
#define ID_S3 "0192f5e8-0000-7000-8000-000000000003"
#define ID_S4 "0192f5e8-0000-7000-8000-000000000004"
#define ID_UNKNOWN "0192f5e8-0000-7000-8000-0000000000ff"

/* The sessions of setup, as the contract writes them. S1..S3 are cust_a's, S4 cust_b's. */
#define JSON_S1                                                                                                    \
    "{\"session_id\":\"" ID_S1 "\",\"api_name\":\"scraping_browser1\",\"status\":\"finished\","                    \
    "\"target_url\":\"https://www.example.com/\",\"end_url\":\"https://www.example.com/done\",\"navigations\":3,"  \
    "\"timestamp\":\"2025-12-01T00:00:01Z\",\"duration\":12.345,\"captcha\":\"solved\",\"bandwidth\":2048,"        \
    "\"error\":null}"
#define JSON_S2                                                                                                    \
    "{\"session_id\":\"" ID_S2 "\",\"api_name\":\"checkout_zone\",\"status\":\"failed\","                          \
    "\"target_url\":\"https://shop.example.org/cart\",\"end_url\":null,\"navigations\":1,"                         \
    "\"timestamp\":\"2025-12-01T00:00:02Z\",\"duration\":0.5,\"captcha\":\"none\",\"bandwidth\":10,"               \
    "\"error\":{\"code\":\"page_navigated_error\",\"message\":\"net::ERR_NAME_NOT_RESOLVED\"}}"

/* ---- the daemon's API part, on its loop thread -------------------------------------- */

typedef struct {
    char dir[64];
    char path[128];
    store_t *store;
    catalog_t *catalog;
    api_t *api;
    char key_a[STORE_API_KEY_LEN + 1];
    char key_b[STORE_API_KEY_LEN + 1];

    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    bool running;
    http_server_t *srv;
    int port;

    /* end_session: set by the test before a request, read after its response */
    pthread_mutex_t mutex;
    int end_rc;
    int end_calls;
    char end_customer[STORE_ID_MAX + 1];
    uint8_t end_id[16];
} fixture_t;

/* Answers at once, as the gateway does for a session of this process. */
static void end_session(void *ctx, const char *customer_id, const uint8_t id[16], api_end_done_fn done,
                        void *done_arg) {
    fixture_t *fx = ctx;
    pthread_mutex_lock(&fx->mutex);
    fx->end_calls++;
    snprintf(fx->end_customer, sizeof fx->end_customer, "%s", customer_id);
    memcpy(fx->end_id, id, 16);
    int rc = fx->end_rc;
    pthread_mutex_unlock(&fx->mutex);
    done(done_arg, rc);
}

static void on_server_stopped(void *arg) {
    fixture_t *fx = arg;
    uv_close((uv_handle_t *)&fx->stop, NULL); /* the last handle: uv_run returns */
}

static void on_stop(uv_async_t *async) {
    fixture_t *fx = async->data;
    http_server_stop(fx->srv, on_server_stopped, fx);
}

static void *loop_thread(void *arg) {
    fixture_t *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static session_record_t record(const char *id, const char *zone, session_status_t status, int64_t second) {
    session_record_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.session_id, sizeof r.session_id, "%s", id);
    r.api_name = (char *)zone; /* borrowed: store_session_put copies */
    r.status = status;
    r.timestamp_ms = T0_MS + second * 1000;
    r.duration_ms = SESSION_DURATION_NULL;
    return r;
}

static int put_sessions(store_t *s) {
    session_record_t r1 = record(ID_S1, "scraping_browser1", SESSION_FINISHED, 1);
    r1.target_url = "https://www.example.com/";
    r1.end_url = "https://www.example.com/done";
    r1.navigations = 3;
    r1.duration_ms = 12345;
    r1.captcha = CAPTCHA_SOLVED;
    r1.bandwidth = 2048;
    session_record_t r2 = record(ID_S2, "checkout_zone", SESSION_FAILED, 2);
    r2.target_url = "https://shop.example.org/cart";
    r2.navigations = 1;
    r2.duration_ms = 500;
    r2.bandwidth = 10;
    r2.error_code = "page_navigated_error";
    r2.error_message = "net::ERR_NAME_NOT_RESOLVED";
    session_record_t r3 = record(ID_S3, "scraping_browser1", SESSION_RUNNING, 3);
    session_record_t r4 = record(ID_S4, "scraping_browser1", SESSION_FINISHED, 4);
    r4.duration_ms = 1000;
    if (store_session_put(s, "cust_a", &r1) || store_session_put(s, "cust_a", &r2) ||
        store_session_put(s, "cust_a", &r3) || store_session_put(s, "cust_b", &r4))
        return -1;
    return 0;
}

static int start(void **state, bool with_end_session) {
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    pthread_mutex_init(&fx->mutex, NULL);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/browserd-api-test-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(fx->path, sizeof fx->path, "%s/browserd.db", fx->dir);
    char err[512] = "", key_id[STORE_KEY_ID_LEN + 1];
    if (store_open(fx->path, &fx->store, err, sizeof err) != 0 ||
        store_customer_add(fx->store, "cust_a", err, sizeof err) != 0 ||
        store_customer_add(fx->store, "cust_b", err, sizeof err) != 0 ||
        store_key_add(fx->store, "cust_a", fx->key_a, key_id, err, sizeof err) != 0 ||
        store_key_add(fx->store, "cust_b", fx->key_b, key_id, err, sizeof err) != 0 || put_sessions(fx->store) != 0) {
        fprintf(stderr, "store: %s\n", err);
        return -1;
    }
    /* As the daemon does before it listens: the first load. */
    fx->catalog = catalog_new();
    if (!fx->catalog || catalog_sync(fx->catalog, fx->store) != 0) return -1;
    if (uv_loop_init(&fx->loop) != 0 || uv_async_init(&fx->loop, &fx->stop, on_stop) != 0) return -1;
    fx->stop.data = fx;
    api_config_t acfg = {.loop = &fx->loop, .store = fx->store, .catalog = fx->catalog};
    if (with_end_session) {
        acfg.end_session = end_session;
        acfg.end_session_ctx = fx;
    }
    if (api_new(&acfg, &fx->api) != 0) return -1;
    http_server_config_t hcfg;
    http_server_config_defaults(&hcfg);
    hcfg.host = "127.0.0.1";
    hcfg.port = 0;
    if (http_server_start(&fx->loop, &hcfg, api_handle, fx->api, &fx->srv) != 0) return -1;
    fx->port = http_server_port(fx->srv);
    if (pthread_create(&fx->thread, NULL, loop_thread, fx) != 0) return -1;
    fx->running = true;
    *state = fx;
    return 0;
}

static int setup(void **state) { return start(state, true); }
static int setup_without_end_session(void **state) { return start(state, false); }

static int teardown(void **state) {
    fixture_t *fx = *state;
    if (fx->running) {
        uv_async_send(&fx->stop);
        pthread_join(fx->thread, NULL);
        assert_int_equal(uv_loop_close(&fx->loop), 0);
    }
    api_free(fx->api);
    catalog_free(fx->catalog);
    store_close(fx->store);
    DIR *d = opendir(fx->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char file[512];
            snprintf(file, sizeof file, "%s/%s", fx->dir, e->d_name);
            unlink(file);
        }
        closedir(d);
    }
    rmdir(fx->dir);
    pthread_mutex_destroy(&fx->mutex);
    free(fx);
    return 0;
}

/* ---- a blocking client: one request per connection ("Connection: close") ------------ */

typedef struct {
    int status;
    char head[4096]; /* status line and headers */
    char body[8192];
} response_t;

/* Sends `method path` with these extra header lines ("Name: value\r\n"..., or "") and reads
 * the whole response (the server closes after it). */
static void request(fixture_t *fx, const char *method, const char *path, const char *headers, response_t *res) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = WAIT_SECONDS};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    char req[2048];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: test\r\n%sConnection: close\r\n\r\n", method, path,
                     headers);
    assert_true(n > 0 && (size_t)n < sizeof req);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    char raw[sizeof res->head + sizeof res->body];
    size_t len = 0;
    for (;;) {
        ssize_t got = recv(fd, raw + len, sizeof raw - 1 - len, 0);
        if (got < 0) fail_msg("no complete response to %s %s", method, path);
        if (got == 0) break;
        len += (size_t)got;
        assert_true(len < sizeof raw - 1);
    }
    close(fd);
    raw[len] = '\0';
    char *end = strstr(raw, "\r\n\r\n");
    assert_non_null(end);
    *end = '\0';
    size_t head_len = (size_t)(end - raw), body_len = len - head_len - 4;
    assert_true(head_len + 3 <= sizeof res->head && body_len + 1 <= sizeof res->body);
    memcpy(res->head, raw, head_len);
    memcpy(res->head + head_len, "\r\n", 3); /* each header line ends with CRLF */
    memcpy(res->body, end + 4, body_len + 1);
    assert_int_equal(sscanf(raw, "HTTP/1.1 %d", &res->status), 1);
}

static void get_as(fixture_t *fx, const char *key, const char *path, response_t *res) {
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", key);
    request(fx, "GET", path, auth, res);
}

static void method_as(fixture_t *fx, const char *method, const char *key, const char *path, response_t *res) {
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", key);
    request(fx, method, path, auth, res);
}

static void assert_header(const response_t *res, const char *line) {
    char want[256];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    if (!strcasestr(res->head, want)) fail_msg("no \"%s\" in:\n%s", line, res->head);
}

static void assert_response(const response_t *res, int status, const char *body) {
    if (res->status != status || strcmp(res->body, body) != 0)
        print_error("got %d %s\nwant %d %s\n", res->status, res->body, status, body);
    assert_int_equal(res->status, status);
    assert_string_equal(res->body, body);
}

static void parse_id(const char *text, uint8_t id[16]) { assert_int_equal(uuid_parse(text, strlen(text), id), 0); }

static void set_end_rc(fixture_t *fx, int rc) {
    pthread_mutex_lock(&fx->mutex);
    fx->end_rc = rc;
    pthread_mutex_unlock(&fx->mutex);
}

/* ---- health ------------------------------------------------------------------------- */

static void test_healthz_counts_the_sessions_and_needs_no_key(void **state) {
    fixture_t *fx = *state;
    response_t res;
    request(fx, "GET", "/healthz", "", &res);
    assert_response(&res, 200, "{\"status\":\"ok\",\"sessions\":4}");
    assert_header(&res, "Content-Type: application/json");
}

static void test_healthz_refuses_other_methods_with_405_and_allow(void **state) {
    fixture_t *fx = *state;
    response_t res;
    request(fx, "POST", "/healthz", "", &res);
    assert_response(&res, 405, "{\"error\":\"Method not allowed\"}");
    assert_header(&res, "Allow: GET, HEAD");
}

/* ---- authentication ----------------------------------------------------------------- */

static void test_missing_key_is_a_401_with_www_authenticate(void **state) {
    fixture_t *fx = *state;
    response_t res;
    request(fx, "GET", "/browser_sessions", "", &res);
    assert_response(&res, 401, "{\"error\":\"Credentials are missing\"}");
    assert_header(&res, "WWW-Authenticate: Bearer");
}

static void test_scheme_other_than_bearer_is_a_missing_key(void **state) {
    fixture_t *fx = *state;
    response_t res;
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Basic %s\r\n", fx->key_a);
    request(fx, "GET", "/browser_sessions", auth, &res);
    assert_response(&res, 401, "{\"error\":\"Credentials are missing\"}");
    request(fx, "GET", "/browser_sessions", "Authorization: Bearer   \r\n", &res);
    assert_response(&res, 401, "{\"error\":\"Credentials are missing\"}");
    assert_header(&res, "WWW-Authenticate: Bearer");
}

static void test_invalid_key_is_a_401_with_www_authenticate(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, "0000000000000000000000000000000000000000000000000000000000000000", "/browser_sessions", &res);
    assert_response(&res, 401, "{\"error\":\"Invalid credentials\"}");
    assert_header(&res, "WWW-Authenticate: Bearer");
}

static void test_bearer_scheme_is_case_insensitive(void **state) {
    fixture_t *fx = *state;
    response_t res;
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: bEaReR %s\r\n", fx->key_b);
    request(fx, "GET", "/browser_sessions?limit=1", auth, &res);
    assert_int_equal(res.status, 200);
}

static void test_401_comes_before_400_404_and_405(void **state) {
    fixture_t *fx = *state;
    const char *bad = "not-a-key";
    response_t res;
    get_as(fx, bad, "/browser_sessions?limit=101", &res); /* would be 400 */
    assert_response(&res, 401, "{\"error\":\"Invalid credentials\"}");
    get_as(fx, bad, "/browser_sessions/not-a-uuid", &res); /* 400 */
    assert_int_equal(res.status, 401);
    get_as(fx, bad, "/browser_sessions/" ID_UNKNOWN, &res); /* 404 */
    assert_int_equal(res.status, 401);
    get_as(fx, bad, "/nowhere", &res); /* 404 */
    assert_int_equal(res.status, 401);
    method_as(fx, "POST", bad, "/browser_sessions", &res); /* 405 */
    assert_int_equal(res.status, 401);
    request(fx, "PUT", "/browser_sessions/" ID_S1, "", &res); /* 405, without any key */
    assert_response(&res, 401, "{\"error\":\"Credentials are missing\"}");
}

/* ---- list --------------------------------------------------------------------------- */

static void test_list_is_the_exact_envelope(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_a, "/browser_sessions?status=finished", &res);
    assert_response(&res, 200,
                    "{\"sessions\":[" JSON_S1 "],\"count\":1,\"total\":1,\"pagination\":{\"offset\":0,\"limit\":50,"
                    "\"has_more\":false,\"next_offset\":null}}");
    assert_header(&res, "Content-Type: application/json");
}

static void test_list_applies_every_filter(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_a,
           "/browser_sessions?api_name=checkout_zone&status=failed&target_url=example.org"
           "&start_date=2025-12-01T00:00:02Z&end_date=2025-12-01&sort=bandwidth&order=asc",
           &res);
    assert_response(&res, 200,
                    "{\"sessions\":[" JSON_S2 "],\"count\":1,\"total\":1,\"pagination\":{\"offset\":0,\"limit\":50,"
                    "\"has_more\":false,\"next_offset\":null}}");
    get_as(fx, fx->key_a, "/browser_sessions?target_url=https%3A%2F%2Fwww.example.com%2F", &res);
    assert_response(&res, 200,
                    "{\"sessions\":[" JSON_S1 "],\"count\":1,\"total\":1,\"pagination\":{\"offset\":0,\"limit\":50,"
                    "\"has_more\":false,\"next_offset\":null}}");
}

static void test_list_pages_newest_first(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_a, "/browser_sessions?limit=1&offset=1", &res);
    assert_response(&res, 200,
                    "{\"sessions\":[" JSON_S2 "],\"count\":1,\"total\":3,\"pagination\":{\"offset\":1,\"limit\":1,"
                    "\"has_more\":true,\"next_offset\":2}}");
}

static void test_list_shows_only_the_keys_customer(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_b, "/browser_sessions", &res);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"session_id\":\"" ID_S4 "\""));
    assert_null(strstr(res.body, ID_S1));
    assert_non_null(strstr(res.body, "\"count\":1,\"total\":1,"));
}

static void test_sessions_stored_after_start_are_listed(void **state) {
    fixture_t *fx = *state;
    session_record_t r = record("0192f5e8-0000-7000-8000-000000000005", "zone_new", SESSION_RUNNING, 5);
    assert_int_equal(store_session_put(fx->store, "cust_b", &r), 0);
    response_t res;
    get_as(fx, fx->key_b, "/browser_sessions?api_name=zone_new", &res);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"session_id\":\"0192f5e8-0000-7000-8000-000000000005\""));
}

static void test_limit_above_100_is_a_400(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_a, "/browser_sessions?limit=101", &res);
    assert_response(&res, 400,
                    "{\"error\":\"Invalid request parameters\","
                    "\"details\":\"limit: must be an integer from 1 to 100\"}");
}

static void test_list_refuses_other_methods_with_405_and_allow(void **state) {
    fixture_t *fx = *state;
    response_t res;
    method_as(fx, "POST", fx->key_a, "/browser_sessions", &res);
    assert_response(&res, 405, "{\"error\":\"Method not allowed\"}");
    assert_header(&res, "Allow: GET, HEAD");
    method_as(fx, "DELETE", fx->key_a, "/browser_sessions", &res);
    assert_int_equal(res.status, 405);
}

static void test_unknown_path_is_a_404(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_a, "/browser_sessions/" ID_S1 "/more", &res);
    assert_response(&res, 404, "{\"error\":\"Not found\"}");
    get_as(fx, fx->key_a, "/sessions", &res);
    assert_response(&res, 404, "{\"error\":\"Not found\"}");
}

/* ---- one session -------------------------------------------------------------------- */

static void test_get_of_a_session_is_200_with_it(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_a, "/browser_sessions/" ID_S2, &res);
    assert_response(&res, 200, "{\"session\":" JSON_S2 "}");
    get_as(fx, fx->key_a, "/browser_sessions/0192F5E8-0000-7000-8000-000000000002", &res); /* any case */
    assert_response(&res, 200, "{\"session\":" JSON_S2 "}");
}

static void test_get_of_a_malformed_id_is_a_400(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_a, "/browser_sessions/0192f5e8-0000-7000-8000-00000000000", &res);
    assert_response(&res, 400, "{\"error\":\"Invalid session_id format\"}");
    get_as(fx, fx->key_a, "/browser_sessions/", &res);
    assert_response(&res, 400, "{\"error\":\"Invalid session_id format\"}");
}

static void test_get_of_an_unknown_id_is_a_404_naming_it(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_a, "/browser_sessions/" ID_UNKNOWN, &res);
    assert_response(&res, 404, "{\"error\":\"Session not found\",\"session_id\":\"" ID_UNKNOWN "\"}");
}

static void test_get_of_another_customers_session_is_a_404(void **state) {
    fixture_t *fx = *state;
    response_t res;
    get_as(fx, fx->key_b, "/browser_sessions/" ID_S1, &res);
    assert_response(&res, 404, "{\"error\":\"Session not found\",\"session_id\":\"" ID_S1 "\"}");
}

static void test_other_methods_on_a_session_are_405_with_allow(void **state) {
    fixture_t *fx = *state;
    response_t res;
    method_as(fx, "PUT", fx->key_a, "/browser_sessions/" ID_S1, &res);
    assert_response(&res, 405, "{\"error\":\"Method not allowed\"}");
    assert_header(&res, "Allow: GET, HEAD, DELETE");
}

/* ---- DELETE ------------------------------------------------------------------------- */

static void test_delete_of_a_running_session_is_204_and_ends_it_there(void **state) {
    fixture_t *fx = *state;
    set_end_rc(fx, 0); /* the callback ended it */
    response_t res;
    method_as(fx, "DELETE", fx->key_a, "/browser_sessions/0192F5E8-0000-7000-8000-000000000003", &res);
    assert_int_equal(res.status, 204);
    assert_string_equal(res.body, "");
    uint8_t id[16];
    parse_id(ID_S3, id);
    pthread_mutex_lock(&fx->mutex);
    assert_int_equal(fx->end_calls, 1);
    assert_string_equal(fx->end_customer, "cust_a");
    assert_memory_equal(fx->end_id, id, 16);
    pthread_mutex_unlock(&fx->mutex);
}

static void test_delete_of_a_session_not_running_here_is_a_409(void **state) {
    fixture_t *fx = *state;
    set_end_rc(fx, -ENOENT);
    response_t res;
    method_as(fx, "DELETE", fx->key_a, "/browser_sessions/" ID_S1, &res);
    assert_response(&res, 409, "{\"error\":\"Session is not running\",\"session_id\":\"" ID_S1 "\"}");
    pthread_mutex_lock(&fx->mutex);
    assert_int_equal(fx->end_calls, 1);
    pthread_mutex_unlock(&fx->mutex);
}

/* The node that runs it, or the database, could not be reached: the client may retry. */
static void test_delete_that_cannot_reach_the_session_is_a_503(void **state) {
    fixture_t *fx = *state;
    set_end_rc(fx, -ETIMEDOUT);
    response_t res;
    method_as(fx, "DELETE", fx->key_a, "/browser_sessions/" ID_S1, &res);
    assert_response(&res, 503, "{\"error\":\"Service unavailable: the database cannot be reached\"}");
}

static void test_delete_without_an_end_session_callback_is_a_409(void **state) {
    fixture_t *fx = *state;
    response_t res;
    method_as(fx, "DELETE", fx->key_a, "/browser_sessions/" ID_S3, &res);
    assert_response(&res, 409, "{\"error\":\"Session is not running\",\"session_id\":\"" ID_S3 "\"}");
}

static void test_delete_of_an_unknown_session_is_a_404_and_ends_nothing(void **state) {
    fixture_t *fx = *state;
    response_t res;
    method_as(fx, "DELETE", fx->key_a, "/browser_sessions/" ID_UNKNOWN, &res);
    assert_response(&res, 404, "{\"error\":\"Session not found\",\"session_id\":\"" ID_UNKNOWN "\"}");
    method_as(fx, "DELETE", fx->key_b, "/browser_sessions/" ID_S3, &res); /* cust_a's */
    assert_int_equal(res.status, 404);
    pthread_mutex_lock(&fx->mutex);
    assert_int_equal(fx->end_calls, 0);
    pthread_mutex_unlock(&fx->mutex);
}

static void test_delete_of_a_malformed_id_is_a_400(void **state) {
    fixture_t *fx = *state;
    response_t res;
    method_as(fx, "DELETE", fx->key_a, "/browser_sessions/xyz", &res);
    assert_response(&res, 400, "{\"error\":\"Invalid session_id format\"}");
    pthread_mutex_lock(&fx->mutex);
    assert_int_equal(fx->end_calls, 0);
    pthread_mutex_unlock(&fx->mutex);
}

#define API_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        API_TEST(test_healthz_counts_the_sessions_and_needs_no_key),
        API_TEST(test_healthz_refuses_other_methods_with_405_and_allow),
        API_TEST(test_missing_key_is_a_401_with_www_authenticate),
        API_TEST(test_scheme_other_than_bearer_is_a_missing_key),
        API_TEST(test_invalid_key_is_a_401_with_www_authenticate),
        API_TEST(test_bearer_scheme_is_case_insensitive),
        API_TEST(test_401_comes_before_400_404_and_405),
        API_TEST(test_list_is_the_exact_envelope),
        API_TEST(test_list_applies_every_filter),
        API_TEST(test_list_pages_newest_first),
        API_TEST(test_list_shows_only_the_keys_customer),
        API_TEST(test_sessions_stored_after_start_are_listed),
        API_TEST(test_limit_above_100_is_a_400),
        API_TEST(test_list_refuses_other_methods_with_405_and_allow),
        API_TEST(test_unknown_path_is_a_404),
        API_TEST(test_get_of_a_session_is_200_with_it),
        API_TEST(test_get_of_a_malformed_id_is_a_400),
        API_TEST(test_get_of_an_unknown_id_is_a_404_naming_it),
        API_TEST(test_get_of_another_customers_session_is_a_404),
        API_TEST(test_other_methods_on_a_session_are_405_with_allow),
        API_TEST(test_delete_of_a_running_session_is_204_and_ends_it_there),
        API_TEST(test_delete_of_a_session_not_running_here_is_a_409),
        API_TEST(test_delete_that_cannot_reach_the_session_is_a_503),
        cmocka_unit_test_setup_teardown(test_delete_without_an_end_session_callback_is_a_409, setup_without_end_session,
                                        teardown),
        API_TEST(test_delete_of_an_unknown_session_is_a_404_and_ends_nothing),
        API_TEST(test_delete_of_a_malformed_id_is_a_400),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
