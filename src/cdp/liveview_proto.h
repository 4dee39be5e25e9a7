/* The live view's wire formats, socket-free (so unit tests and fuzz_liveview reach them):
 * Page.inspect's params, the input messages a viewer sends over its WebSocket, and the CDP
 * Input.* commands they become.
 *
 * A viewer's input message is one JSON object (text frame):
 *   {"type":"mouse","action":"down"|"up"|"move","x":0..1,"y":0..1,"button":"left"|"middle"|"right",
 *    "clicks":1..3,"modifiers":0..15}
 *   {"type":"wheel","x":0..1,"y":0..1,"dx":px,"dy":px,"modifiers":0..15}
 *   {"type":"key","action":"down"|"up","key":"a","code":"KeyA","text":"a","keyCode":0..255,"modifiers":0..15}
 * x and y are fractions of the view (the viewer knows only its picture); browserd scales them
 * to the page's CSS pixels with the size the last frame reported. Anything else is refused.
 *
 * Ownership: inputs are borrowed for the call; liveview_input_command's *out is malloc'ed and
 * the caller's. Threading: none (pure functions). */
#ifndef BROWSERD_CDP_LIVEVIEW_PROTO_H
#define BROWSERD_CDP_LIVEVIEW_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIVEVIEW_KEY_MAX 32  /* "key" and "code" values (DOM names are short) */
#define LIVEVIEW_TEXT_MAX 16 /* "text": one character, maybe a few code units */

typedef enum {
    LIVEVIEW_MOUSE_DOWN,
    LIVEVIEW_MOUSE_UP,
    LIVEVIEW_MOUSE_MOVE,
    LIVEVIEW_WHEEL,
    LIVEVIEW_KEY_DOWN,
    LIVEVIEW_KEY_UP,
} liveview_input_kind_t;

typedef struct {
    liveview_input_kind_t kind;
    double x, y;   /* mouse, wheel: 0..1 of the view */
    double dx, dy; /* wheel: CSS pixels, |v| <= 10000 */
    const char *button; /* mouse: "left", "middle", "right" (static) */
    int clicks;    /* mouse down/up: 1..3 */
    int modifiers; /* Alt=1, Ctrl=2, Meta=4, Shift=8 (CDP's bits) */
    char key[LIVEVIEW_KEY_MAX + 1];
    char code[LIVEVIEW_KEY_MAX + 1];
    char text[LIVEVIEW_TEXT_MAX + 1];
    int key_code; /* windowsVirtualKeyCode, 0 when not given */
} liveview_input_t;

/* Parses one viewer message. 0, or -EINVAL with *why set to a static reason. */
int liveview_input_parse(const char *msg, size_t len, liveview_input_t *out, const char **why);

/* The CDP command(s) for one input on a page whose view is width x height CSS pixels, on the
 * CDP session `session` (not escaped: browserd's own session ids are plain), the first with
 * message id `id` and the next (a mouse down is a move, then a press) with id - 1. Each command
 * is one malloc'ed JSON text; out[0..*n) are the caller's. 0 or -ENOMEM / -EINVAL. */
#define LIVEVIEW_MAX_COMMANDS 2
int liveview_input_commands(const liveview_input_t *in, double width, double height, const char *session,
                            int64_t id, char *out[LIVEVIEW_MAX_COMMANDS], size_t out_len[LIVEVIEW_MAX_COMMANDS],
                            int *n);

/* Page.inspect's params (NULL/0 when absent): *input is the "input" member (default false).
 * 0, or -EINVAL with *why set (params not an object, input not a boolean). */
int liveview_inspect_params(const char *params, size_t len, bool *input, const char **why);

#endif
