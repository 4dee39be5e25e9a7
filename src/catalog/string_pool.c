#include "catalog/string_pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const char *s, size_t len) {
    uint32_t h = 2166136261u; /* FNV-1a: short strings, good enough spread, no dependencies */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

int string_pool_init(string_pool_t *p) {
    memset(p, 0, sizeof *p);
    p->cap = 1024;
    p->entries = calloc(p->cap, sizeof *p->entries);
    p->buckets = calloc(1024, sizeof *p->buckets);
    if (!p->entries || !p->buckets) {
        string_pool_free(p);
        return -ENOMEM;
    }
    p->bucket_mask = 1023;
    p->count = 1; /* slot 0 reserved */
    return 0;
}

void string_pool_free(string_pool_t *p) {
    if (p->entries)
        for (uint32_t i = 1; i < p->count; i++) free(p->entries[i].str);
    free(p->entries);
    free(p->buckets);
    memset(p, 0, sizeof *p);
}

static int grow_buckets(string_pool_t *p) {
    uint32_t nb = (p->bucket_mask + 1) * 2;
    uint32_t *b = calloc(nb, sizeof *b);
    if (!b) return -ENOMEM;
    for (uint32_t i = 1; i < p->count; i++) {
        string_pool_entry_t *e = &p->entries[i];
        if (!e->str) continue;
        uint32_t slot = e->hash & (nb - 1);
        e->next = b[slot];
        b[slot] = i;
    }
    free(p->buckets);
    p->buckets = b;
    p->bucket_mask = nb - 1;
    return 0;
}

uint32_t string_pool_intern(string_pool_t *p, const char *s, size_t len) {
    if (!s) return 0;
    if (len >= UINT32_MAX) return UINT32_MAX;
    uint32_t h = hash_bytes(s, len);
    for (uint32_t i = p->buckets[h & p->bucket_mask]; i; i = p->entries[i].next) {
        string_pool_entry_t *e = &p->entries[i];
        if (e->hash == h && e->len == len && memcmp(e->str, s, len) == 0) {
            e->refs++;
            return i;
        }
    }
    char *copy = malloc(len + 1);
    if (!copy) return UINT32_MAX;
    memcpy(copy, s, len);
    copy[len] = '\0';
    uint32_t id;
    if (p->free_head) {
        id = p->free_head;
        p->free_head = p->entries[id].next;
    } else {
        if (p->count == p->cap) {
            if (p->cap >= UINT32_MAX / 2) {
                free(copy);
                return UINT32_MAX;
            }
            string_pool_entry_t *ne = realloc(p->entries, (size_t)p->cap * 2 * sizeof *ne);
            if (!ne) {
                free(copy);
                return UINT32_MAX;
            }
            p->entries = ne;
            p->cap *= 2;
        }
        id = p->count++;
    }
    string_pool_entry_t *e = &p->entries[id];
    e->str = copy;
    e->len = (uint32_t)len;
    e->refs = 1;
    e->hash = h;
    uint32_t slot = h & p->bucket_mask;
    e->next = p->buckets[slot];
    p->buckets[slot] = id;
    p->bytes += len + 1;
    /* Keep chains short; a failed growth only costs speed. */
    if (p->count > p->bucket_mask + 1) (void)grow_buckets(p);
    return id;
}

void string_pool_release(string_pool_t *p, uint32_t id) {
    if (!id) return;
    string_pool_entry_t *e = &p->entries[id];
    if (--e->refs) return;
    uint32_t *link = &p->buckets[e->hash & p->bucket_mask];
    while (*link != id) link = &p->entries[*link].next;
    *link = e->next;
    p->bytes -= e->len + 1;
    free(e->str);
    e->str = NULL;
    e->len = 0;
    e->next = p->free_head;
    p->free_head = id;
}
