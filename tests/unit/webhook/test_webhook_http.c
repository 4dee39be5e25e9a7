/* The webhook POST against real loopback servers (a thread each): the request as sent, the
 * status as answered, and each way an attempt fails: refused, silent (timeout), not HTTP,
 * stopped; over TLS with a certificate made for the test (the openssl command): accepted
 * against its CA, refused against the system's CAs and for another host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "webhook/webhook_http.h"

typedef enum { ANSWER_204, ANSWER_NOTHING, ANSWER_GARBAGE } mode_t_;

typedef struct {
    int listen_fd;
    uint16_t port;
    mode_t_ mode;
    char request[8192];
    size_t request_len;
    int release_fd; /* eventfd: the silent server lets go of its connection */
    SSL_CTX *tls;   /* a TLS server when set */
    bool handshake_failed;
    pthread_t thread;
} server_t;

static void *serve_one(void *arg) {
    server_t *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0) return NULL;
    SSL *ssl = NULL;
    if (s->tls) {
        ssl = SSL_new(s->tls);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) {
            s->handshake_failed = true;
            SSL_free(ssl);
            close(fd);
            return NULL;
        }
    }
    /* the whole request: head and Content-Length bytes of body */
    for (;;) {
        ssize_t n = ssl ? SSL_read(ssl, s->request + s->request_len, (int)(sizeof s->request - 1 - s->request_len))
                        : recv(fd, s->request + s->request_len, sizeof s->request - 1 - s->request_len, 0);
        if (n <= 0) break;
        s->request_len += (size_t)n;
        s->request[s->request_len] = '\0';
        char *end = strstr(s->request, "\r\n\r\n");
        const char *cl = strstr(s->request, "Content-Length: ");
        if (end && cl && s->request_len >= (size_t)(end + 4 - s->request) + (size_t)atoi(cl + 16)) break;
    }
    if (s->mode == ANSWER_204 && ssl) {
        const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (SSL_write(ssl, a, (int)strlen(a)) <= 0) fprintf(stderr, "SSL_write failed\n");
    } else if (s->mode == ANSWER_204) {
        const char *a = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        if (send(fd, a, strlen(a), MSG_NOSIGNAL) < 0) perror("send");
    } else if (s->mode == ANSWER_GARBAGE) {
        const char *a = "hello there\n";
        if (send(fd, a, strlen(a), MSG_NOSIGNAL) < 0) perror("send");
    } else {
        uint64_t v;
        if (read(s->release_fd, &v, sizeof v) < 0) perror("read");
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static void server_start_tls(server_t *s, mode_t_ mode, SSL_CTX *tls) {
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->tls = tls;
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->listen_fd, 4), 0);
    socklen_t len = sizeof a;
    getsockname(s->listen_fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    s->release_fd = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void server_start(server_t *s, mode_t_ mode) { server_start_tls(s, mode, NULL); }

static void server_stop(server_t *s) {
    uint64_t one = 1;
    if (write(s->release_fd, &one, sizeof one) < 0) perror("write");
    shutdown(s->listen_fd, SHUT_RDWR); /* an accept that never got a connection returns */
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    close(s->release_fd);
}

static void loopback(webhook_addr_t *a, uint16_t port) {
    memset(a, 0, sizeof *a);
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->len = sizeof *sin;
}

/* A port where nothing listens: bound, then closed. */
static uint16_t closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static int post_to(const char *url, const webhook_addr_t *addrs, size_t n, int stop_fd, int64_t response_ms,
                   SSL_CTX *tls, int *status, char *err, size_t err_cap) {
    webhook_url_t u;
    char why[256];
    assert_int_equal(webhook_url_parse(url, &u, why, sizeof why), 0);
    const char *body = "{\"session\":{}}";
    webhook_http_request_t rq = {.url = &u, .addrs = addrs, .addr_count = n, .headers = "Browserd-Event: session.ended\r\n",
                                 .body = body, .body_len = strlen(body), .connect_timeout_ms = 2000,
                                 .response_timeout_ms = response_ms, .stop_fd = stop_fd, .tls = tls};
    return webhook_http_post(&rq, status, err, err_cap);
}

static int post(uint16_t port, const webhook_addr_t *addrs, size_t n, int stop_fd, int64_t response_ms, int *status,
                char *err, size_t err_cap) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/in?x=1", (unsigned)port);
    return post_to(url, addrs, n, stop_fd, response_ms, NULL, status, err, err_cap);
}

static void test_the_request_is_a_complete_post_and_the_status_comes_back(void **state) {
    (void)state;
    server_t s;
    server_start(&s, ANSWER_204);
    webhook_addr_t a;
    loopback(&a, s.port);
    int status = 0;
    char err[256] = "";
    assert_int_equal(post(s.port, &a, 1, -1, 5000, &status, err, sizeof err), 0);
    assert_int_equal(status, 204);
    server_stop(&s);
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%u\r\n", (unsigned)s.port);
    assert_memory_equal(s.request, "POST /in?x=1 HTTP/1.1\r\n", 23);
    assert_non_null(strstr(s.request, host));
    assert_non_null(strstr(s.request, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(s.request, "\r\nContent-Length: 14\r\n"));
    assert_non_null(strstr(s.request, "\r\nBrowserd-Event: session.ended\r\n"));
    assert_non_null(strstr(s.request, "\r\n\r\n{\"session\":{}}"));
}

static void test_a_refused_address_is_skipped_for_the_next(void **state) {
    (void)state;
    server_t s;
    server_start(&s, ANSWER_204);
    webhook_addr_t a[2];
    loopback(&a[0], closed_port());
    loopback(&a[1], s.port);
    int status = 0;
    char err[256] = "";
    assert_int_equal(post(s.port, a, 2, -1, 5000, &status, err, sizeof err), 0);
    assert_int_equal(status, 204);
    server_stop(&s);
}

static void test_nothing_listening_is_connection_refused(void **state) {
    (void)state;
    uint16_t port = closed_port();
    webhook_addr_t a;
    loopback(&a, port);
    int status = -1;
    char err[256] = "";
    assert_int_equal(post(port, &a, 1, -1, 5000, &status, err, sizeof err), -ECONNREFUSED);
    assert_int_equal(status, 0);
    assert_non_null(strstr(err, "cannot connect"));
}

static void test_a_silent_receiver_runs_into_the_response_timeout(void **state) {
    (void)state;
    server_t s;
    server_start(&s, ANSWER_NOTHING);
    webhook_addr_t a;
    loopback(&a, s.port);
    int status = 0;
    char err[256] = "";
    assert_int_equal(post(s.port, &a, 1, -1, 300, &status, err, sizeof err), -ETIMEDOUT);
    assert_non_null(strstr(err, "response timeout"));
    server_stop(&s);
}

static void test_an_answer_that_is_not_http_is_eproto(void **state) {
    (void)state;
    server_t s;
    server_start(&s, ANSWER_GARBAGE);
    webhook_addr_t a;
    loopback(&a, s.port);
    int status = 0;
    char err[256] = "";
    assert_int_equal(post(s.port, &a, 1, -1, 5000, &status, err, sizeof err), -EPROTO);
    server_stop(&s);
}

static void test_a_stop_cuts_the_wait_short(void **state) {
    (void)state;
    server_t s;
    server_start(&s, ANSWER_NOTHING);
    webhook_addr_t a;
    loopback(&a, s.port);
    int stop = eventfd(1, EFD_CLOEXEC); /* asked already: the first wait ends */
    int status = 0;
    char err[256] = "";
    assert_int_equal(post(s.port, &a, 1, stop, 60000, &status, err, sizeof err), -ECANCELED);
    close(stop);
    server_stop(&s);
}

/* ---- TLS ---- */

static char cert_dir[64], cert_file[128], key_file[128];

/* A certificate for the name "localhost" only (not 127.0.0.1), and its key. */
static int make_certificate(void **state) {
    (void)state;
    snprintf(cert_dir, sizeof cert_dir, "/tmp/webhook-tls-XXXXXX");
    if (!mkdtemp(cert_dir)) return -1;
    snprintf(cert_file, sizeof cert_file, "%s/cert.pem", cert_dir);
    snprintf(key_file, sizeof key_file, "%s/key.pem", cert_dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost -keyout %s -out %s 2>/dev/null",
             key_file, cert_file);
    return system(cmd) == 0 ? 0 : -1;
}

static int remove_certificate(void **state) {
    (void)state;
    unlink(cert_file);
    unlink(key_file);
    rmdir(cert_dir);
    return 0;
}

static SSL_CTX *server_context(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate_file(ctx, cert_file, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM), 1);
    return ctx;
}

static int tls_post(const char *host, SSL_CTX *client, server_t *s, int *status, char *err, size_t err_cap) {
    webhook_addr_t a;
    loopback(&a, s->port);
    char url[96];
    snprintf(url, sizeof url, "https://%s:%u/in", host, (unsigned)s->port);
    return post_to(url, &a, 1, -1, 5000, client, status, err, err_cap);
}

static void test_https_to_a_receiver_of_a_trusted_ca(void **state) {
    (void)state;
    SSL_CTX *server = server_context(), *client = NULL;
    char err[256] = "";
    assert_int_equal(webhook_http_tls_new(cert_file, &client, err, sizeof err), 0);
    server_t s;
    server_start_tls(&s, ANSWER_204, server);
    int status = 0;
    assert_int_equal(tls_post("localhost", client, &s, &status, err, sizeof err), 0);
    assert_int_equal(status, 200);
    server_stop(&s);
    assert_memory_equal(s.request, "POST /in HTTP/1.1\r\n", 19);
    assert_non_null(strstr(s.request, "\r\n\r\n{\"session\":{}}"));
    webhook_http_tls_free(client);
    SSL_CTX_free(server);
}

static void test_https_refuses_an_untrusted_certificate_and_another_host(void **state) {
    (void)state;
    SSL_CTX *server = server_context(), *system_cas = NULL, *ours = NULL;
    char err[256] = "";
    assert_int_equal(webhook_http_tls_new(NULL, &system_cas, err, sizeof err), 0);
    assert_int_equal(webhook_http_tls_new(cert_file, &ours, err, sizeof err), 0);
    server_t s;
    int status = 0;
    server_start_tls(&s, ANSWER_204, server);
    assert_int_equal(tls_post("localhost", system_cas, &s, &status, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "certificate not accepted"));
    server_stop(&s);
    assert_true(s.handshake_failed);
    assert_int_equal(s.request_len, 0);
    /* the certificate names localhost, not 127.0.0.1 */
    server_start_tls(&s, ANSWER_204, server);
    assert_int_equal(tls_post("127.0.0.1", ours, &s, &status, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "certificate not accepted"));
    server_stop(&s);
    assert_int_equal(s.request_len, 0);
    webhook_http_tls_free(system_cas);
    webhook_http_tls_free(ours);
    SSL_CTX_free(server);
}

static void test_https_without_a_context_and_a_missing_ca_file_fail_clearly(void **state) {
    (void)state;
    SSL_CTX *ctx = NULL;
    char err[256] = "";
    assert_int_equal(webhook_http_tls_new("/nonexistent/ca.pem", &ctx, err, sizeof err), -EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    SSL_CTX *server = server_context();
    server_t s;
    server_start_tls(&s, ANSWER_204, server);
    int status = 0;
    assert_int_equal(tls_post("localhost", NULL, &s, &status, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "TLS is not set up"));
    server_stop(&s);
    SSL_CTX_free(server);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* a peer that goes away mid-write, as in the daemon */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_request_is_a_complete_post_and_the_status_comes_back),
        cmocka_unit_test(test_a_refused_address_is_skipped_for_the_next),
        cmocka_unit_test(test_nothing_listening_is_connection_refused),
        cmocka_unit_test(test_a_silent_receiver_runs_into_the_response_timeout),
        cmocka_unit_test(test_an_answer_that_is_not_http_is_eproto),
        cmocka_unit_test(test_a_stop_cuts_the_wait_short),
        cmocka_unit_test(test_https_to_a_receiver_of_a_trusted_ca),
        cmocka_unit_test(test_https_refuses_an_untrusted_certificate_and_another_host),
        cmocka_unit_test(test_https_without_a_context_and_a_missing_ca_file_fail_clearly),
    };
    return cmocka_run_group_tests(tests, make_certificate, remove_certificate);
}
