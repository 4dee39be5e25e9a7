/* A libuv loop running in a thread of its own, for unit tests whose test thread is a blocking
 * client of a server on that loop: the test posts work to the loop thread and waits for it.
 * Header-only (static functions): each unit test is one executable.
 *
 * Use: embed a loop_thread_t, loop_thread_init (the loop exists, nothing runs yet), create the
 * server on lt.loop, loop_thread_start; loop_thread_run(lt, fn, arg) runs fn(owner, arg) on the
 * loop thread and waits for it; when the server has stopped, loop_thread_release (from the
 * loop thread) lets the loop end, and loop_thread_join waits for it. The mutex and condition
 * are the test's to share for its own state (signal with pthread_cond_broadcast). */
#ifndef BROWSERD_TESTS_LOOP_THREAD_H
#define BROWSERD_TESTS_LOOP_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <uv.h>

typedef void (*loop_thread_fn)(void *owner, void *arg);

typedef struct {
    uv_loop_t loop;
    uv_async_t wakeup;
    pthread_t thread;
    bool running;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    void *owner;
    loop_thread_fn command;
    void *command_arg;
    bool command_pending;
    int wait_seconds;
} loop_thread_t;

static void loop_thread_on_wakeup(uv_async_t *async) {
    loop_thread_t *lt = async->data;
    pthread_mutex_lock(&lt->mutex);
    loop_thread_fn fn = lt->command_pending ? lt->command : NULL;
    void *arg = lt->command_arg;
    pthread_mutex_unlock(&lt->mutex);
    if (!fn) return;
    fn(lt->owner, arg);
    pthread_mutex_lock(&lt->mutex);
    lt->command_pending = false;
    pthread_cond_broadcast(&lt->cond);
    pthread_mutex_unlock(&lt->mutex);
}

static void *loop_thread_main(void *arg) {
    loop_thread_t *lt = arg;
    uv_run(&lt->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* 0, or a negative error of uv_loop_init / uv_async_init. */
static int loop_thread_init(loop_thread_t *lt, void *owner, int wait_seconds) {
    lt->owner = owner;
    lt->wait_seconds = wait_seconds;
    lt->running = false;
    lt->command_pending = false;
    pthread_mutex_init(&lt->mutex, NULL);
    pthread_cond_init(&lt->cond, NULL);
    int rc = uv_loop_init(&lt->loop);
    if (rc == 0) rc = uv_async_init(&lt->loop, &lt->wakeup, loop_thread_on_wakeup);
    lt->wakeup.data = lt;
    return rc;
}

static int loop_thread_start(loop_thread_t *lt) {
    int rc = pthread_create(&lt->thread, NULL, loop_thread_main, lt);
    lt->running = rc == 0;
    return rc;
}

/* A deadline wait_seconds from now, for pthread_cond_timedwait. */
static void loop_thread_deadline(const loop_thread_t *lt, struct timespec *ts) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += lt->wait_seconds;
}

/* Runs fn(owner, arg) on the loop thread; false when it did not run within wait_seconds. */
static bool loop_thread_run(loop_thread_t *lt, loop_thread_fn fn, void *arg) {
    pthread_mutex_lock(&lt->mutex);
    lt->command = fn;
    lt->command_arg = arg;
    lt->command_pending = true;
    pthread_mutex_unlock(&lt->mutex);
    uv_async_send(&lt->wakeup);
    struct timespec deadline;
    loop_thread_deadline(lt, &deadline);
    pthread_mutex_lock(&lt->mutex);
    int rc = 0;
    while (lt->command_pending && rc == 0) rc = pthread_cond_timedwait(&lt->cond, &lt->mutex, &deadline);
    bool done = !lt->command_pending;
    pthread_mutex_unlock(&lt->mutex);
    return done;
}

/* On the loop thread, once nothing else will be posted: the loop may end. */
static void loop_thread_release(loop_thread_t *lt) { uv_close((uv_handle_t *)&lt->wakeup, NULL); }

/* Waits for the loop to end, then closes it: uv_loop_close's result (UV_EBUSY when a handle
 * was left open). */
static int loop_thread_join(loop_thread_t *lt) {
    if (lt->running) pthread_join(lt->thread, NULL);
    lt->running = false;
    int rc = uv_loop_close(&lt->loop);
    pthread_mutex_destroy(&lt->mutex);
    pthread_cond_destroy(&lt->cond);
    return rc;
}

#endif
