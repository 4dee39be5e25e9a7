#include "core/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double fast_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 10};
static const double slow_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

const metric_buckets_t METRIC_BUCKETS_FAST = {fast_bounds, sizeof fast_bounds / sizeof *fast_bounds};
const metric_buckets_t METRIC_BUCKETS_SLOW = {slow_bounds, sizeof slow_bounds / sizeof *slow_bounds};

void metric_histogram_init(metric_histogram_t *h, const metric_buckets_t *buckets) {
    memset(h, 0, sizeof *h);
    h->buckets = *buckets;
    if (h->buckets.count > METRIC_MAX_BUCKETS) h->buckets.count = METRIC_MAX_BUCKETS;
    for (size_t i = 0; i < h->buckets.count; i++) h->bounds_ns[i] = (uint64_t)llround(h->buckets.bounds[i] * 1e9);
}

void metric_histogram_observe_ns(metric_histogram_t *h, uint64_t ns) {
    size_t i = 0;
    while (i < h->buckets.count && ns > h->bounds_ns[i]) i++; /* le: a bound is inclusive */
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

/* ---------------------------------------------------------------- counter sets ---- */

void metric_counter_set_init(metric_counter_set_t *s, const char *label0, const char *label1) {
    memset(s, 0, sizeof *s);
    s->labels[0] = label0;
    s->labels[1] = label1;
}

void metric_counter_set_free(metric_counter_set_t *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->entries[i].values[0]);
        free(s->entries[i].values[1]);
    }
    s->n = 0;
}

static metric_counter_entry_t *find(const metric_counter_set_t *s, const char *v0, const char *v1) {
    for (size_t i = 0; i < s->n; i++) {
        const metric_counter_entry_t *e = &s->entries[i];
        if (strcmp(e->values[0], v0) == 0 && (!s->labels[1] || strcmp(e->values[1], v1) == 0))
            return (metric_counter_entry_t *)e;
    }
    return NULL;
}

/* Takes the next free entry for (v0, v1) with count 0; NULL when the set is full or out of
 * memory. */
static metric_counter_entry_t *new_entry(metric_counter_set_t *s, const char *v0, const char *v1) {
    if (s->n == METRIC_COUNTER_SET_MAX) return NULL;
    metric_counter_entry_t *e = &s->entries[s->n];
    e->values[0] = strdup(v0);
    e->values[1] = s->labels[1] ? strdup(v1) : NULL;
    if (!e->values[0] || (s->labels[1] && !e->values[1])) {
        free(e->values[0]);
        free(e->values[1]);
        e->values[0] = e->values[1] = NULL;
        return NULL;
    }
    e->count = 0;
    s->n++;
    return e;
}

void metric_counter_set_add(metric_counter_set_t *s, const char *v0, const char *v1, uint64_t n) {
    if (!v0) v0 = "";
    if (!v1) v1 = "";
    metric_counter_entry_t *e = find(s, v0, v1);
    /* A new key: the last slot is kept for "other", so that a full set still counts. */
    if (!e && s->n < METRIC_COUNTER_SET_MAX - 1) e = new_entry(s, v0, v1);
    if (!e) e = find(s, "other", "other");
    if (!e) e = new_entry(s, "other", "other");
    if (e) e->count += n; /* else out of memory with a full set: the count is lost */
}

uint64_t metric_counter_set_get(const metric_counter_set_t *s, const char *v0, const char *v1) {
    const metric_counter_entry_t *e = find(s, v0 ? v0 : "", v1 ? v1 : "");
    return e ? e->count : 0;
}

/* ---------------------------------------------------------------- the text format ---- */

int metrics_write_family(buf_t *out, const char *name, const char *type, const char *help) {
    return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0 ? -ENOMEM : 0;
}

/* A value as the format writes it: integers exactly, others to 15 significant digits (what a
 * double always holds, so no ...9999 tails). */
static int append_value(buf_t *out, double v) {
    if (isnan(v)) return buf_append_str(out, "NaN");
    if (isinf(v)) return buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9.007199254740992e15) return buf_printf(out, "%.0f", v) < 0 ? -ENOMEM : 0;
    return buf_printf(out, "%.15g", v) < 0 ? -ENOMEM : 0;
}

int metrics_write_sample(buf_t *out, const char *name, const char *labels, double value) {
    int rc = labels && *labels ? (buf_printf(out, "%s{%s} ", name, labels) < 0 ? -ENOMEM : 0)
                               : (buf_printf(out, "%s ", name) < 0 ? -ENOMEM : 0);
    if (rc == 0) rc = append_value(out, value);
    if (rc == 0) rc = buf_append_char(out, '\n');
    return rc < 0 ? -ENOMEM : 0;
}

int metrics_write_one(buf_t *out, const char *name, const char *type, const char *help, double value) {
    int rc = metrics_write_family(out, name, type, help);
    return rc < 0 ? rc : metrics_write_sample(out, name, NULL, value);
}

int metrics_append_label(buf_t *labels, const char *name, const char *value) {
    if (labels->len && buf_append_char(labels, ',') < 0) return -ENOMEM;
    if (buf_printf(labels, "%s=\"", name) < 0) return -ENOMEM;
    for (const char *p = value; *p; p++) {
        int rc;
        switch (*p) {
        case '\\': rc = buf_append_str(labels, "\\\\"); break;
        case '"': rc = buf_append_str(labels, "\\\""); break;
        case '\n': rc = buf_append_str(labels, "\\n"); break;
        default: rc = buf_append_char(labels, *p); break;
        }
        if (rc < 0) return -ENOMEM;
    }
    return buf_append_char(labels, '"') < 0 ? -ENOMEM : 0;
}

int metrics_write_histogram(buf_t *out, const char *name, const char *labels, const metric_histogram_t *h) {
    const char *sep = labels && *labels ? "," : "";
    if (!labels) labels = "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->buckets.count; i++) {
        cumulative += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        int rc;
        if (i < h->buckets.count)
            rc = buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->buckets.bounds[i],
                            (unsigned long long)cumulative);
        else
            rc = buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cumulative);
        if (rc < 0) return -ENOMEM;
    }
    double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    if (buf_printf(out, "%s_sum%s%s%s ", name, open, labels, close) < 0 || append_value(out, sum) < 0 ||
        buf_printf(out, "\n%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)cumulative) < 0)
        return -ENOMEM;
    return 0;
}

int metrics_write_counter_set(buf_t *out, const char *name, const metric_counter_set_t *s) {
    buf_t labels;
    buf_init(&labels);
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        buf_reset(&labels);
        rc = metrics_append_label(&labels, s->labels[0], s->entries[i].values[0]);
        if (rc == 0 && s->labels[1]) rc = metrics_append_label(&labels, s->labels[1], s->entries[i].values[1]);
        if (rc == 0) rc = metrics_write_sample(out, name, labels.data, (double)s->entries[i].count);
    }
    buf_free(&labels);
    return rc;
}
