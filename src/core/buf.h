/* Growable byte buffer.
 * Ownership: a buf_t owns `data`; buf_free releases it, buf_steal hands it to the caller.
 * Every appending function returns 0 or -ENOMEM and leaves the buffer valid on failure. */
#ifndef BROWSERD_CORE_BUF_H
#define BROWSERD_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated whenever len > 0 or after any append */
    size_t len;
    size_t cap;
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);
/* Forget the contents, keep the allocation. */
void buf_reset(buf_t *b);
/* Ensure room for `extra` more bytes plus a NUL terminator. */
int buf_reserve(buf_t *b, size_t extra);
int buf_append(buf_t *b, const void *p, size_t n);
int buf_append_str(buf_t *b, const char *s);
int buf_append_char(buf_t *b, char c);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Hand the (NUL-terminated) data to the caller, who frees it; the buffer becomes empty. */
char *buf_steal(buf_t *b, size_t *len_out);

#endif
