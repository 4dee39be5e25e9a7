/* libFuzzer target for the live view's viewer protocol (src/cdp/liveview_proto.c): a viewer's
 * input message, and Page.inspect's params, from bytes anyone holding a live URL can send.
 * Checks, besides crashes and sanitizer reports:
 *   - an accepted message is within its documented ranges (x, y in 0..1, |dx|, |dy| <= 10000,
 *     clicks 1..3, modifiers 0..15, short NUL-terminated key strings);
 *   - every command it becomes is one valid CDP message (cdp_scan) with the given id (counting
 *     down), session and an Input.dispatch* method, and coordinates inside the page;
 *   - the params check never accepts what is not a JSON object. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_scan.h"
#include "cdp/liveview_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_number_in(const cdp_msg_t *m, const char *key, double lo, double hi) {
    cdp_value_t v;
    if (cdp_object_get(m->params.ptr, m->params.len, key, strlen(key), &v) != 0) return;
    double d = strtod(v.raw.ptr, NULL);
    if (v.type != CDP_T_NUMBER || !(d >= lo && d <= hi)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 8192) return 0; /* a viewer's message is at most 4 KiB */
    const char *msg = (const char *)data;
    liveview_input_t in;
    const char *why = NULL;
    if (liveview_input_parse(msg, size, &in, &why) == 0) {
        if (!(in.x >= 0 && in.x <= 1 && in.y >= 0 && in.y <= 1) || fabs(in.dx) > 10000 || fabs(in.dy) > 10000 ||
            in.modifiers < 0 || in.modifiers > 15 || in.key_code < 0 || in.key_code > 255)
            abort();
        if ((in.kind == LIVEVIEW_MOUSE_DOWN || in.kind == LIVEVIEW_MOUSE_UP) && (in.clicks < 1 || in.clicks > 3))
            abort();
        if (!memchr(in.key, '\0', sizeof in.key) || !memchr(in.code, '\0', sizeof in.code) ||
            !memchr(in.text, '\0', sizeof in.text))
            abort();
        char *out[LIVEVIEW_MAX_COMMANDS];
        size_t lens[LIVEVIEW_MAX_COMMANDS];
        int n = 0;
        if (liveview_input_commands(&in, 1280, 720, "S", -1000000000, out, lens, &n) != 0) abort();
        for (int i = 0; i < n; i++) {
            cdp_msg_t m;
            if (cdp_scan(out[i], lens[i], &m) != 0 || !m.id_is_int || m.id != -1000000000 - i ||
                !cdp_string_equals(m.session_id, "S", 1) || !m.params.ptr ||
                !(cdp_string_equals(m.method, "Input.dispatchMouseEvent", 24) ||
                  cdp_string_equals(m.method, "Input.dispatchKeyEvent", 22)))
                abort();
            check_number_in(&m, "x", 0, 1280);
            check_number_in(&m, "y", 0, 720);
            free(out[i]);
        }
    } else if (!why) {
        abort(); /* a refusal always says why */
    }
    bool input;
    why = NULL;
    int rc = liveview_inspect_params(msg, size, &input, &why);
    cdp_value_t v;
    if (rc == 0 && size && cdp_object_get(msg, size, "x", 1, &v) == -EINVAL) abort(); /* not an object */
    if (rc != 0 && !why) abort();
    return 0;
}
