/* Reference-counted string interning for the catalog: every distinct URL, zone name, error
 * code and message is stored once and named by a 32-bit id (0 = no string).
 * Ownership: the pool owns its copies; each successful intern is one reference the caller
 * holds until it releases it. string_pool_get's pointer is borrowed: valid until the last
 * reference to the id is released.
 * Not thread-safe by itself: the catalog's lock covers it. */
#ifndef BROWSERD_CATALOG_STRING_POOL_H
#define BROWSERD_CATALOG_STRING_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *str;     /* owned, NUL-terminated; NULL for a free slot */
    uint32_t len;
    uint32_t refs;
    uint32_t hash;
    uint32_t next; /* next entry in the bucket chain, or in the free list */
} string_pool_entry_t;

typedef struct {
    string_pool_entry_t *entries; /* entries[0] is reserved: id 0 means "no string" */
    uint32_t count, cap;
    uint32_t *buckets;            /* heads of chains, 0 = empty; power-of-two sized */
    uint32_t bucket_mask;
    uint32_t free_head;
    size_t bytes;                 /* string bytes held, for memory reports */
} string_pool_t;

/* An empty pool: 0 or -ENOMEM. */
int string_pool_init(string_pool_t *p);
void string_pool_free(string_pool_t *p);
/* Returns the id of the string (adding a reference), 0 for s == NULL, or UINT32_MAX when out
 * of memory. The string is copied. */
uint32_t string_pool_intern(string_pool_t *p, const char *s, size_t len);
/* Drops one reference; the string is freed with its last reference, and its id may then be
 * given to another string. id 0 is ignored. */
void string_pool_release(string_pool_t *p, uint32_t id);

static inline const char *string_pool_get(const string_pool_t *p, uint32_t id) {
    return id ? p->entries[id].str : NULL;
}
static inline uint32_t string_pool_len(const string_pool_t *p, uint32_t id) {
    return id ? p->entries[id].len : 0;
}

#endif
