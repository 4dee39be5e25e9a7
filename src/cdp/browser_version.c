/* `chromium --version`, read without blocking: see browser_version.h. */
#include "cdp/browser_version.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uv_process_t proc;
    uv_pipe_t out;
    char text[256];
    size_t len;
    int open; /* handles not yet closed */
    browser_version_cb cb;
    void *arg;
} probe_t;

int browser_version_product(const char *text, char *out, size_t cap) {
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p) || (p > text && !isspace((unsigned char)p[-1]))) continue;
        size_t n = strspn(p, "0123456789.");
        unsigned dots = 0;
        for (size_t i = 0; i < n; i++) dots += p[i] == '.';
        if (dots < 2 || p[n - 1] == '.') continue;
        snprintf(out, cap, "HeadlessChrome/%.*s", (int)n, p);
        return 0;
    }
    return -EINVAL;
}

static void on_closed(uv_handle_t *h) {
    probe_t *p = h->data;
    if (--p->open > 0) return;
    p->text[p->len] = '\0';
    char product[64] = "";
    if (browser_version_product(p->text, product, sizeof product) < 0) product[0] = '\0';
    if (p->cb) p->cb(p->arg, product);
    free(p);
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int signal) {
    (void)status;
    (void)signal;
    uv_close((uv_handle_t *)proc, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    probe_t *p = h->data;
    (void)suggested;
    *b = uv_buf_init(p->text + p->len, (unsigned)(sizeof p->text - 1 - p->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    probe_t *p = s->data;
    (void)b;
    if (n > 0) p->len += (size_t)n;
    if (n < 0 || p->len >= sizeof p->text - 1) uv_close((uv_handle_t *)s, on_closed);
}

int browser_version_probe(uv_loop_t *loop, const char *chromium_path, browser_version_cb cb, void *arg) {
    probe_t *p = calloc(1, sizeof *p);
    if (!p) return UV_ENOMEM;
    p->cb = cb;
    p->arg = arg;
    uv_pipe_init(loop, &p->out, 0);
    p->out.data = p->proc.data = p;
    char *args[] = {(char *)chromium_path, "--version", NULL};
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
                                     {.flags = UV_IGNORE}};
    uv_process_options_t opt = {.file = chromium_path, .args = args, .exit_cb = on_exit_cb, .stdio_count = 3, .stdio = stdio};
    p->open = 2;
    int rc = uv_spawn(loop, &p->proc, &opt);
    if (rc < 0) {
        p->cb = NULL; /* the caller learns it from rc: on_closed only frees */
        uv_close((uv_handle_t *)&p->proc, on_closed);
        uv_close((uv_handle_t *)&p->out, on_closed);
        return rc;
    }
    uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
    return 0;
}
