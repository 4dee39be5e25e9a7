/* One headless Chromium per session, talked to over --remote-debugging-pipe.
 *
 * What a browser_t is: a supervisor process (browserd's own binary in the hidden mode
 * `__browser-supervisor`, see supervisor.h) that creates a fresh profile directory, runs
 * Chromium in a process group of its own, and on any end kills that group (and every
 * descendant that left it), deletes the profile and reports how Chromium ended. The CDP pipe
 * goes straight from browserd to Chromium (its fds 3 and 4); the supervisor never touches it.
 * Nothing of a session survives it, even when browserd is killed with SIGKILL: see
 * docs/browser.md for the failure table.
 *
 * Threading: every function here and every callback runs on the loop thread. The loop thread
 * must be the thread that lives as long as browserd (the main thread): the supervisor's
 * parent-death signal fires when the *thread* that spawned it exits. The process must ignore
 * SIGPIPE (browserd's main does): a write to a Chromium that just died fails with EPIPE.
 *
 * Ownership:
 *  - browser_launch borrows the config and the callbacks struct for the call only (everything
 *    is copied or turned into the supervisor's argv before it returns).
 *  - on_message hands over a malloc'ed buffer: the callee frees it. buf[len] is the NUL that
 *    ended the message on the pipe, so the buffer is also a C string.
 *  - browser_send takes the message over in every case (also when it fails).
 *  - The browser_t belongs to the caller: browser_free it once, after on_exit or instead of
 *    waiting for it (then on_exit is not called).
 *
 * CDP message ids: browserd's own commands use the negative ids that cdp_ids.h reserves. */
#ifndef BROWSERD_CDP_BROWSER_H
#define BROWSERD_CDP_BROWSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct browser browser_t;

/* The largest message accepted from Chromium (a 256 MiB screenshot or DOM dump is the order
 * of magnitude a client can legitimately ask for). A longer one ends the browser with
 * BROWSER_END_PROTOCOL_ERROR. */
#define BROWSER_MAX_MESSAGE ((size_t)256 << 20)

/* The hidden command line mode that runs the supervisor (see src/main.c). */
#define BROWSER_SUPERVISOR_COMMAND "__browser-supervisor"

#define BROWSER_DEFAULT_CHROMIUM "/usr/bin/chromium"

typedef struct {
    /* Chromium, an absolute path (default BROWSER_DEFAULT_CHROMIUM; a wrapper script that
     * execs Chromium, like Debian's, is fine). */
    const char *chromium_path;
    /* Extra Chromium arguments, appended after browserd's own (e.g. "--proxy-server=...").
     * --remote-debugging-* and --user-data-dir are refused (-EINVAL): browserd owns those. */
    const char *const *extra_args;
    size_t extra_arg_count;
    /* Where profiles are created (default: browser_default_temp_root). Created 0700 if absent;
     * refused if it is not a directory owned by us with mode 0700. */
    const char *temp_root;
    /* The binary run in the supervisor mode (default "/proc/self/exe": exactly the binary that
     * is running, even if the file was replaced by an upgrade since). Any binary whose main()
     * dispatches BROWSER_SUPERVISOR_COMMAND to browser_supervisor_main works (the tests do). */
    const char *supervisor_path;
    /* Write backpressure (bytes queued and not yet taken by the kernel). on_drain fires once
     * the queue is at or below the low watermark after a browser_send left it above the high
     * one. Defaults: high 8 MiB, low 1 MiB. */
    size_t write_high_watermark;
    size_t write_low_watermark;
    /* Messages from Chromium longer than this end the browser (default and maximum
     * BROWSER_MAX_MESSAGE). */
    size_t max_message;
    /* After browser_kill, the supervisor gets this long to clean up before it is SIGKILLed and
     * browserd cleans up itself (default 10 s). */
    uint64_t kill_timeout_ms;
    /* Chromium's stdout/stderr go to /dev/null unless this is set (then to browserd's stderr):
     * Chromium logs several lines of D-Bus noise per launch. */
    bool chromium_stderr;
    /* Start the supervisor and Chromium as run_uid:run_gid (supplementary groups cleared)
     * instead of as browserd (only root may; see browser_user.h). Then Chromium keeps its
     * sandbox, and the default temp root is browser_temp_root_for(run_uid). */
    bool run_as;
    uid_t run_uid;
    gid_t run_gid;
} browser_config_t;

/* How a browser ended, as given to on_exit(ctx, status, term_signal):
 *   status >= 0                  Chromium exited by itself with exit code `status`
 *                                (0: e.g. after a Browser.close command); term_signal 0.
 *   BROWSER_END_CRASHED          Chromium's main process died of signal term_signal that
 *                                browserd did not send (a crash, the OOM killer, kill -9).
 *   BROWSER_END_KILLED           ended on request (browser_kill, browser_free, pool stop, or
 *                                the supervisor got SIGTERM/SIGINT/SIGHUP from elsewhere).
 *   BROWSER_END_LAUNCH_FAILED    the supervisor could not start Chromium (temp root refused,
 *                                profile, fork, exec); see browserd's stderr for the reason.
 *   BROWSER_END_PROTOCOL_ERROR   the pipe failed: a message over max_message, out of memory
 *                                for it, or a read error; browserd killed the browser.
 *   BROWSER_END_SUPERVISOR_LOST  the supervisor died without reporting (term_signal = its
 *                                signal, e.g. 9); browserd killed Chromium's group and
 *                                removed the profile itself.
 * In every case the cleanup is done when on_exit runs. */
enum {
    BROWSER_END_CRASHED = -1,
    BROWSER_END_KILLED = -2,
    BROWSER_END_LAUNCH_FAILED = -3,
    BROWSER_END_PROTOCOL_ERROR = -4,
    BROWSER_END_SUPERVISOR_LOST = -5,
};
/* The Chromium options browserd starts every browser with (besides --user-data-dir and the
 * extra args): headless, the pipe, nothing that phones home; --no-sandbox only when Chromium
 * will run as root (as_root), where it refuses its sandbox.
 * Writes at most BROWSER_BASE_ARGS_MAX pointers to static strings into args; returns how
 * many. Benchmarks start their direct baseline browser with the very same options. */
#define BROWSER_BASE_ARGS_MAX 32
size_t browser_base_args(const char *args[BROWSER_BASE_ARGS_MAX], bool as_root);

/* "exit", "crashed", "killed", ... for logs. */
const char *browser_end_str(int status);

typedef struct {
    /* A complete message from Chromium, without its NUL terminator (len bytes; buf[len] is
     * '\0'). Ownership of msg moves to the callee. Not called after browser_kill. */
    void (*on_message)(void *ctx, char *msg, size_t len);
    /* The supervisor is gone, Chromium and all its processes are dead and the profile is
     * deleted. Called exactly once per browser (unless browser_free came first), and after
     * every message Chromium wrote before it died was delivered: if reading is paused then,
     * on_exit waits for browser_resume_reading (or browser_kill). The callee may call
     * browser_free from here. */
    void (*on_exit)(void *ctx, int status, int term_signal);
    /* The write queue fell to the low watermark after having been above the high one. May be
     * NULL. */
    void (*on_drain)(void *ctx);
} browser_callbacks_t;

/* Fills the defaults above. A field left 0/NULL in the config given to browser_launch also
 * means its default. */
void browser_config_defaults(browser_config_t *cfg);

/* "$TMPDIR/browserd-<uid>" (TMPDIR unset or empty: /tmp) for browserd's own uid, or for
 * another's (the browsers' of --browser-user). Returns 0 or -ENAMETOOLONG. */
int browser_default_temp_root(char *out, size_t cap);
int browser_temp_root_for(char *out, size_t cap, uid_t uid);

/* Starts a supervisor and Chromium. Returns 0 with *out set (callbacks follow on the loop),
 * or a negative errno (-ENOMEM, -EINVAL, an error of uv_spawn such as -EAGAIN) with *out NULL
 * and nothing left behind. Chromium's own start takes a few hundred ms; messages may be
 * sent at once (they wait in the pipe until Chromium reads it). */
int browser_launch(uv_loop_t *loop, const browser_config_t *cfg, const browser_callbacks_t *cb,
                   void *ctx, browser_t **out);

/* Replaces the callbacks and their ctx (the pool hands a browser over this way). */
void browser_set_callbacks(browser_t *b, const browser_callbacks_t *cb, void *ctx);

/* Queues one message (len bytes, without a terminator; browserd writes the NUL after it
 * without copying the message). Ownership of msg moves here in every case. Returns the bytes
 * queued after this call (>= 0; stop reading the client while it is above
 * write_high_watermark, on_drain says when to resume), or -EPIPE if the browser is ended,
 * being killed or exited, or another negative errno of the write. */
int64_t browser_send(browser_t *b, char *msg, size_t len);

/* Bytes queued toward Chromium and not yet written. */
size_t browser_write_queue_size(const browser_t *b);

/* Stop / restart reading from Chromium (e.g. while the client's socket is not draining).
 * Chromium then blocks on a full pipe; nothing is lost. Messages of the read in progress are
 * still delivered when pausing from inside on_message: at most one read, which the socket's
 * buffer bounds (~200 KB here). Idempotent. */
void browser_pause_reading(browser_t *b);
void browser_resume_reading(browser_t *b);

/* Ends the browser: SIGTERM to the supervisor, which kills the group and cleans up (if it has
 * not within kill_timeout_ms, browserd SIGKILLs it and cleans up itself). No on_message or
 * on_drain after this; queued writes are dropped; on_exit follows. Idempotent. */
void browser_kill(browser_t *b);

/* Releases the browser. Before on_exit: kills it, and the callbacks are no longer called
 * (the memory goes once the processes are gone). After on_exit (or from it): immediate. */
void browser_free(browser_t *b);

/* Chromium's main process (also its process group id), or 0 while the supervisor has not
 * reported it yet / if it never started. */
int browser_pid(const browser_t *b);
/* The supervisor's pid. */
int browser_supervisor_pid(const browser_t *b);
/* The profile directory (valid until browser_free). */
const char *browser_profile_dir(const browser_t *b);
/* Whether on_exit has been called. */
bool browser_exited(const browser_t *b);
/* False once the browser is ending (killed, its supervisor exited, or Chromium closed the
 * pipe): sends fail from then on and on_exit follows. */
bool browser_alive(const browser_t *b);

typedef struct {
    /* browser_launch -> the supervisor reported Chromium's pid (fork + exec done), in µs;
     * -1 until then. */
    int64_t spawn_us;
    /* browser_launch -> the first complete message from Chromium, in µs; -1 until then. When
     * a command is sent right after the launch (as the pool's probe is), this is the launch
     * time: how long Chromium takes until it answers on the pipe. */
    int64_t first_message_us;
    uint64_t messages_in, bytes_in;   /* from Chromium */
    uint64_t reads;                   /* read callbacks that brought bytes */
    uint64_t messages_out, bytes_out; /* to Chromium, queued */
} browser_stats_t;
void browser_get_stats(const browser_t *b, browser_stats_t *out);



#endif
