/* The HTTP client on a chromedriver connection, against a scripted driver on loopback TCP (a
 * thread with blocking sockets): keep-alive, chunked answers, Connection: close, a reset in the
 * middle of an answer, garbage, one request at a time, a close with a request in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "webdriver/driver_link.h"

typedef struct {
    int listen_fd;
    const char *const *answers; /* one per request; NULL: close without answering */
    size_t count;
    char first_request[1024];
} fake_driver_t;

static void read_request(int fd, char *copy, size_t cap) {
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) return;
        have += (size_t)n;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        const char *cl = strstr(buf, "Content-Length: ");
        size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
        if (have >= (size_t)(end + 4 - buf) + body) break;
    }
    if (copy && !copy[0]) snprintf(copy, cap, "%.1000s", buf);
}

static void *driver_main(void *arg) {
    fake_driver_t *f = arg;
    int c = accept(f->listen_fd, NULL, NULL);
    for (size_t i = 0; i < f->count && c >= 0; i++) {
        read_request(c, f->first_request, sizeof f->first_request);
        if (!f->answers[i]) break;
        ssize_t w = write(c, f->answers[i], strlen(f->answers[i]));
        (void)w;
    }
    if (c >= 0) close(c);
    return NULL;
}

typedef struct {
    int calls;
    int status[4];
    char body[4][256];
    char type[4][64];
} answers_t;

static void on_answer(void *arg, int status, const char *content_type, char *body, size_t len) {
    answers_t *a = arg;
    int i = a->calls++;
    a->status[i] = status;
    snprintf(a->type[i], sizeof a->type[i], "%s", content_type);
    if (body) {
        assert_int_equal(strlen(body), len);
        snprintf(a->body[i], sizeof a->body[i], "%s", body);
    }
    free(body);
}

/* A link to a scripted driver (its thread running). */
static driver_link_t *open_link(uv_loop_t *loop, fake_driver_t *f, pthread_t *th) {
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->listen_fd, 1), 0);
    socklen_t len = sizeof a;
    getsockname(f->listen_fd, (struct sockaddr *)&a, &len);
    assert_int_equal(pthread_create(th, NULL, driver_main, f), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    driver_link_t *l = NULL;
    assert_int_equal(driver_link_open(loop, fd, &l), 0);
    return l;
}

static void finish(uv_loop_t *loop, driver_link_t *l, fake_driver_t *f, pthread_t th) {
    driver_link_close(l);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    close(f->listen_fd);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void run_until(uv_loop_t *loop, const answers_t *a, int calls) {
    for (int i = 0; i < 2000 && a->calls < calls; i++) uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(a->calls, calls);
}

static void test_keep_alive_and_chunked_answers(void **state) {
    (void)state;
    const char *script[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 14\r\n\r\n{\"value\":null}",
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
    };
    fake_driver_t f = {.answers = script, .count = 2};
    uv_loop_t loop;
    uv_loop_init(&loop);
    pthread_t th;
    driver_link_t *l = open_link(&loop, &f, &th);
    answers_t a = {0};
    assert_int_equal(driver_link_request(l, "POST", "/session/x/url", "{\"url\":\"u\"}", 11, on_answer, &a), 0);
    assert_int_equal(driver_link_request(l, "GET", "/session/x/title", NULL, 0, on_answer, &a), -EBUSY);
    run_until(&loop, &a, 1);
    assert_int_equal(a.status[0], 200);
    assert_string_equal(a.body[0], "{\"value\":null}");
    assert_string_equal(a.type[0], "application/json; charset=utf-8");
    assert_non_null(strstr(f.first_request, "POST /session/x/url HTTP/1.1\r\n"));
    assert_non_null(strstr(f.first_request, "Content-Length: 11\r\n"));
    assert_non_null(strstr(f.first_request, "Host: 127.0.0.1:9515\r\n")); /* chromedriver checks it */
    assert_non_null(strstr(f.first_request, "\r\n\r\n{\"url\":\"u\"}"));
    assert_true(driver_link_usable(l));
    assert_int_equal(driver_link_request(l, "GET", "/session/x/title", NULL, 0, on_answer, &a), 0);
    run_until(&loop, &a, 2);
    assert_int_equal(a.status[1], 404);
    assert_string_equal(a.body[1], "{\"a\":1}");
    finish(&loop, l, &f, th);
}

static void test_connection_close_and_reset_and_garbage(void **state) {
    (void)state;
    /* Connection: close: the answer comes, then the link is no longer usable */
    const char *closing[] = {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"};
    fake_driver_t f = {.answers = closing, .count = 1};
    uv_loop_t loop;
    uv_loop_init(&loop);
    pthread_t th;
    driver_link_t *l = open_link(&loop, &f, &th);
    answers_t a = {0};
    assert_int_equal(driver_link_request(l, "GET", "/status", NULL, 0, on_answer, &a), 0);
    run_until(&loop, &a, 1);
    assert_int_equal(a.status[0], 200);
    assert_string_equal(a.body[0], "ok");
    assert_false(driver_link_usable(l));
    assert_int_equal(driver_link_request(l, "GET", "/status", NULL, 0, on_answer, &a), -EPIPE);
    finish(&loop, l, &f, th);

    /* the driver goes away in the middle of an answer */
    const char *cut[] = {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"};
    fake_driver_t g = {.answers = cut, .count = 1};
    uv_loop_init(&loop);
    l = open_link(&loop, &g, &th);
    memset(&a, 0, sizeof a);
    assert_int_equal(driver_link_request(l, "GET", "/status", NULL, 0, on_answer, &a), 0);
    run_until(&loop, &a, 1);
    assert_int_equal(a.status[0], -ECONNRESET);
    assert_false(driver_link_usable(l));
    finish(&loop, l, &g, th);

    /* not HTTP */
    const char *garbage[] = {"SSH-2.0-OpenSSH\r\n\r\n"};
    fake_driver_t h = {.answers = garbage, .count = 1};
    uv_loop_init(&loop);
    l = open_link(&loop, &h, &th);
    memset(&a, 0, sizeof a);
    assert_int_equal(driver_link_request(l, "GET", "/status", NULL, 0, on_answer, &a), 0);
    run_until(&loop, &a, 1);
    assert_int_equal(a.status[0], -EPROTO);
    finish(&loop, l, &h, th);
}

static void test_close_answers_the_request_in_flight(void **state) {
    (void)state;
    const char *silent[] = {NULL}; /* reads the request, never answers */
    fake_driver_t f = {.answers = silent, .count = 1};
    uv_loop_t loop;
    uv_loop_init(&loop);
    pthread_t th;
    driver_link_t *l = open_link(&loop, &f, &th);
    answers_t a = {0};
    assert_int_equal(driver_link_request(l, "DELETE", "/session/x", NULL, 0, on_answer, &a), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    driver_link_close(l);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status[0], -ECANCELED);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    close(f.listen_fd);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive_and_chunked_answers),
        cmocka_unit_test(test_connection_close_and_reset_and_garbage),
        cmocka_unit_test(test_close_answers_the_request_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
