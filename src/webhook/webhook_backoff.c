#include "webhook/webhook_backoff.h"

int64_t webhook_backoff_step_ms(const webhook_backoff_t *b, int64_t failed_attempts) {
    int64_t step = b->base_ms > 0 ? b->base_ms : 1;
    /* Doubling stops at the cap, so it cannot overflow however many attempts there were. */
    for (int64_t i = 1; i < failed_attempts && step < b->max_delay_ms; i++) step *= 2;
    return step < b->max_delay_ms ? step : b->max_delay_ms;
}

int64_t webhook_backoff_next_ms(const webhook_backoff_t *b, int64_t created_ms, int64_t now_ms, int64_t failed_attempts,
                                double jitter) {
    if (jitter < 0) jitter = 0;
    if (jitter >= 1) jitter = 0.999999;
    int64_t step = webhook_backoff_step_ms(b, failed_attempts);
    int64_t delay = step / 2 + (int64_t)((double)(step - step / 2) * jitter);
    if (delay < 1) delay = 1;
    int64_t next = now_ms + delay;
    return next > created_ms + b->max_age_ms ? -1 : next;
}
