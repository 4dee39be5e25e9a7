/* When a failed delivery is tried again: exponential backoff with jitter, for a limited time.
 *
 * After the n-th failed attempt (n >= 1) the next one comes after
 *     delay = min(max_delay_ms, base_ms * 2^(n-1)) * (0.5 + 0.5 * jitter),  jitter in [0, 1)
 * ("equal jitter": never sooner than half the step, so receivers coming back are not hit by
 * every sender at once, and the schedule still grows). A delivery whose next attempt would come
 * later than created + max_age_ms is given up (failed).
 *
 * Pure: the caller draws the jitter, so the schedule is testable. */
#ifndef BROWSERD_WEBHOOK_WEBHOOK_BACKOFF_H
#define BROWSERD_WEBHOOK_WEBHOOK_BACKOFF_H

#include <stdint.h>

typedef struct {
    int64_t base_ms;      /* the first retry's step (default 10 s) */
    int64_t max_delay_ms; /* the longest step (default 1 h) */
    int64_t max_age_ms;   /* how long a delivery is tried (default 24 h) */
} webhook_backoff_t;

#define WEBHOOK_BACKOFF_BASE_MS INT64_C(10000)
#define WEBHOOK_BACKOFF_MAX_DELAY_MS INT64_C(3600000)
#define WEBHOOK_BACKOFF_MAX_AGE_MS INT64_C(86400000)

/* The step after `failed_attempts` failures (>= 1), before jitter. */
int64_t webhook_backoff_step_ms(const webhook_backoff_t *b, int64_t failed_attempts);

/* The time of the next attempt after a failure at now_ms that made it `failed_attempts`, or -1
 * when the delivery is to be given up. jitter in [0, 1). */
int64_t webhook_backoff_next_ms(const webhook_backoff_t *b, int64_t created_ms, int64_t now_ms, int64_t failed_attempts,
                                double jitter);

#endif
