/* api_health: which state of the node makes /ready say no, and why (the order matters: a
 * draining node says draining even when its store is also down). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/api_health.h"

static api_node_status_t healthy(void) {
    return (api_node_status_t){.cdp_on = true, .running = 3, .queued = 0, .max_sessions = 10, .max_queue = 5,
                               .store_up = true, .cpu = 0.5, .memory = 0.3};
}

static void test_ready_when_slots_or_queue_places_are_free(void **state) {
    (void)state;
    api_node_status_t st = healthy();
    assert_null(api_health_not_ready_reason(&st));
    st.running = 10; /* every slot taken, the queue has room */
    st.queued = 4;
    assert_null(api_health_not_ready_reason(&st));
}

static void test_full_when_slots_and_queue_are_taken(void **state) {
    (void)state;
    api_node_status_t st = healthy();
    st.running = 10;
    st.queued = 5;
    assert_string_equal(api_health_not_ready_reason(&st), "full");
}

static void test_reasons_and_their_order(void **state) {
    (void)state;
    api_node_status_t st = healthy();
    st.cdp_on = false;
    assert_string_equal(api_health_not_ready_reason(&st), "no_cdp_endpoint");
    st.store_up = false;
    assert_string_equal(api_health_not_ready_reason(&st), "store_unreachable");
    st.draining = true;
    assert_string_equal(api_health_not_ready_reason(&st), "draining");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_when_slots_or_queue_places_are_free),
        cmocka_unit_test(test_full_when_slots_and_queue_are_taken),
        cmocka_unit_test(test_reasons_and_their_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
