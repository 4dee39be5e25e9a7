/* The retry schedule: doubling steps up to the cap, jitter within [step/2, step), and the
 * give-up once the next attempt would come after the delivery's age limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "webhook/webhook_backoff.h"

static const webhook_backoff_t B = {.base_ms = 1000, .max_delay_ms = 8000, .max_age_ms = 60000};

static void test_steps_double_up_to_the_cap(void **state) {
    (void)state;
    int64_t want[] = {1000, 2000, 4000, 8000, 8000, 8000};
    for (int i = 0; i < 6; i++) assert_int_equal(webhook_backoff_step_ms(&B, i + 1), want[i]);
    assert_int_equal(webhook_backoff_step_ms(&B, 1000000), 8000); /* no overflow however many */
}

static void test_the_defaults_give_24_hours_of_retries_with_steps_up_to_an_hour(void **state) {
    (void)state;
    webhook_backoff_t d = {WEBHOOK_BACKOFF_BASE_MS, WEBHOOK_BACKOFF_MAX_DELAY_MS, WEBHOOK_BACKOFF_MAX_AGE_MS};
    assert_int_equal(webhook_backoff_step_ms(&d, 1), 10000);
    assert_int_equal(webhook_backoff_step_ms(&d, 9), 2560000);
    assert_int_equal(webhook_backoff_step_ms(&d, 10), 3600000);
    /* retried until the day is over: the last attempts are an hour apart at most */
    int64_t now = 0, attempts = 0;
    for (;;) {
        int64_t next = webhook_backoff_next_ms(&d, 0, now, ++attempts, 0.999);
        if (next < 0) break;
        assert_true(next - now <= 3600000);
        now = next;
    }
    assert_true(now > 86400000 - 3600000);
    assert_true(now <= 86400000);
}

static void test_jitter_stays_within_half_a_step_and_a_step(void **state) {
    (void)state;
    assert_int_equal(webhook_backoff_next_ms(&B, 0, 10000, 2, 0.0), 11000);
    int64_t high = webhook_backoff_next_ms(&B, 0, 10000, 2, 0.999999);
    assert_true(high > 11900 && high <= 12000);
    int64_t mid = webhook_backoff_next_ms(&B, 0, 10000, 2, 0.5);
    assert_int_equal(mid, 11500);
}

static void test_a_delivery_past_its_age_is_given_up(void **state) {
    (void)state;
    assert_true(webhook_backoff_next_ms(&B, 0, 51000, 4, 0.0) > 0); /* 51 s + 4 s: within 60 s */
    assert_int_equal(webhook_backoff_next_ms(&B, 0, 57000, 4, 0.0), -1); /* 57 s + 4 s: past */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_double_up_to_the_cap),
        cmocka_unit_test(test_the_defaults_give_24_hours_of_retries_with_steps_up_to_an_hour),
        cmocka_unit_test(test_jitter_stays_within_half_a_step_and_a_step),
        cmocka_unit_test(test_a_delivery_past_its_age_is_given_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
