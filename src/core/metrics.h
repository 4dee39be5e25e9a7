/* The pieces of GET /metrics: histograms, labelled counter sets, and the Prometheus text
 * exposition format (version 0.0.4) they are written in.
 *
 * Each module keeps its own metrics (in its own struct, next to what they count) and writes
 * them with these functions when asked; there is no global registry. Names follow Prometheus'
 * conventions: browserd_<what>_<unit>, counters end in _total, durations in _seconds.
 *
 * Threading: metric_histogram_observe may be called from any thread at any time (relaxed
 * atomics; a concurrent write may see a sample in _count before it is in _sum, which
 * Prometheus tolerates). A metric_counter_set_t belongs to one thread, which both counts and
 * writes it. The writers only append to the caller's buffer.
 * Ownership: nothing here allocates but metric_counter_set_t's copies of label values, freed
 * by metric_counter_set_free. */
#ifndef BROWSERD_CORE_METRICS_H
#define BROWSERD_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define METRIC_MAX_BUCKETS 20

/* Bucket bounds in seconds, each larger than the one before, at most METRIC_MAX_BUCKETS;
 * +Inf is implicit. */
typedef struct {
    const double *bounds;
    size_t count;
} metric_buckets_t;

/* Durations: from 100 µs to 10 s (API requests, store writes). */
extern const metric_buckets_t METRIC_BUCKETS_FAST;
/* From 5 ms to 120 s (a browser's start, a wait in the queue). */
extern const metric_buckets_t METRIC_BUCKETS_SLOW;

typedef struct {
    metric_buckets_t buckets;
    uint64_t bounds_ns[METRIC_MAX_BUCKETS];
    _Atomic uint64_t counts[METRIC_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
    _Atomic uint64_t sum_ns;
} metric_histogram_t;

void metric_histogram_init(metric_histogram_t *h, const metric_buckets_t *buckets);
void metric_histogram_observe_ns(metric_histogram_t *h, uint64_t ns);

/* Counters keyed by up to two label values (for instance status and error code), for label
 * sets known to stay small: past METRIC_COUNTER_SET_MAX distinct keys, further keys are
 * counted under the values "other". */
#define METRIC_COUNTER_SET_MAX 128
typedef struct {
    char *values[2];
    uint64_t count;
} metric_counter_entry_t;

typedef struct {
    const char *labels[2]; /* label names; labels[1] NULL for one label. Borrowed. */
    metric_counter_entry_t entries[METRIC_COUNTER_SET_MAX];
    size_t n;
} metric_counter_set_t;

void metric_counter_set_init(metric_counter_set_t *s, const char *label0, const char *label1);
void metric_counter_set_free(metric_counter_set_t *s);
/* Adds n to the counter of (v0, v1) (v1 ignored for one label). Out of memory, the key is
 * counted as "other" too. */
void metric_counter_set_add(metric_counter_set_t *s, const char *v0, const char *v1, uint64_t n);
/* The count of (v0, v1), 0 when never counted (for tests). */
uint64_t metric_counter_set_get(const metric_counter_set_t *s, const char *v0, const char *v1);

/* ---- the text format. Every writer returns 0 or -ENOMEM. ---- */

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram). */
int metrics_write_family(buf_t *out, const char *name, const char *type, const char *help);
/* One sample: name{labels} value. labels is NULL or a pre-formatted, already escaped
 * `a="x",b="y"`. Integral values are written without a fraction. */
int metrics_write_sample(buf_t *out, const char *name, const char *labels, double value);
/* A whole family of one sample (gauge or counter). */
int metrics_write_one(buf_t *out, const char *name, const char *type, const char *help, double value);
/* The _bucket, _sum and _count samples of a histogram (family line not included); labels as
 * in metrics_write_sample, the le label appended to them. */
int metrics_write_histogram(buf_t *out, const char *name, const char *labels, const metric_histogram_t *h);
/* Every sample of a counter set (family line not included). */
int metrics_write_counter_set(buf_t *out, const char *name, const metric_counter_set_t *s);
/* Appends `name="value"` to a label list (with a comma before when labels is not empty),
 * escaping backslash, double quote and newline as the format requires. */
int metrics_append_label(buf_t *labels, const char *name, const char *value);

#endif
