/* The live view's wire formats: see liveview_proto.h. */
#include "cdp/liveview_proto.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_scan.h"
#include "core/buf.h"
#include "json/jsonw.h"

#define KEY(s) {s, sizeof s - 1}

/* A JSON number member as a double (the scanner validated its grammar already). */
static int number_of(const cdp_value_t *v, double *out) {
    char tmp[64];
    if (v->type != CDP_T_NUMBER || v->raw.len >= sizeof tmp) return -EINVAL;
    memcpy(tmp, v->raw.ptr, v->raw.len);
    tmp[v->raw.len] = '\0';
    char *end;
    double d = strtod(tmp, &end);
    if (*end || !isfinite(d)) return -EINVAL;
    *out = d;
    return 0;
}

static int int_in(const cdp_value_t *v, bool present, int lo, int hi, int dflt, int *out) {
    if (!present) {
        *out = dflt;
        return 0;
    }
    int64_t i;
    if (v->type != CDP_T_NUMBER || cdp_number_int(v->raw, &i) != 0 || i < lo || i > hi) return -EINVAL;
    *out = (int)i;
    return 0;
}

static bool str_is(const cdp_value_t *v, const char *lit) {
    return v->type == CDP_T_STRING && cdp_string_equals(v->str, lit, strlen(lit));
}

enum { M_TYPE, M_ACTION, M_X, M_Y, M_BUTTON, M_CLICKS, M_MODIFIERS, M_DX, M_DY, M_KEY, M_CODE, M_TEXT, M_KEYCODE, M_N };

int liveview_input_parse(const char *msg, size_t len, liveview_input_t *out, const char **why) {
    static const cdp_slice_t keys[M_N] = {KEY("type"), KEY("action"), KEY("x"), KEY("y"), KEY("button"),
                                          KEY("clicks"), KEY("modifiers"), KEY("dx"), KEY("dy"), KEY("key"),
                                          KEY("code"), KEY("text"), KEY("keyCode")};
    cdp_value_t v[M_N];
    unsigned found = 0;
    memset(out, 0, sizeof *out);
#define HAS(i) ((found >> (i)) & 1u)
#define FAIL(msg_) \
    do { \
        *why = (msg_); \
        return -EINVAL; \
    } while (0)
    if (cdp_object_get_many(msg, len, keys, M_N, v, &found) != 0) FAIL("not a JSON object");
    if (!HAS(M_TYPE) || v[M_TYPE].type != CDP_T_STRING) FAIL("no type");
    if (int_in(&v[M_MODIFIERS], HAS(M_MODIFIERS), 0, 15, 0, &out->modifiers) < 0) FAIL("bad modifiers");
    bool mouse = str_is(&v[M_TYPE], "mouse"), wheel = str_is(&v[M_TYPE], "wheel"), key = str_is(&v[M_TYPE], "key");
    if (!mouse && !wheel && !key) FAIL("unknown type");
    if (mouse || wheel) {
        if (!HAS(M_X) || !HAS(M_Y) || number_of(&v[M_X], &out->x) < 0 || number_of(&v[M_Y], &out->y) < 0 ||
            out->x < 0 || out->x > 1 || out->y < 0 || out->y > 1)
            FAIL("x and y must be numbers from 0 to 1");
    }
    if (mouse) {
        if (!HAS(M_ACTION)) FAIL("no action");
        if (str_is(&v[M_ACTION], "down")) out->kind = LIVEVIEW_MOUSE_DOWN;
        else if (str_is(&v[M_ACTION], "up")) out->kind = LIVEVIEW_MOUSE_UP;
        else if (str_is(&v[M_ACTION], "move")) out->kind = LIVEVIEW_MOUSE_MOVE;
        else FAIL("unknown mouse action");
        out->button = "left";
        if (HAS(M_BUTTON)) {
            if (str_is(&v[M_BUTTON], "left")) out->button = "left";
            else if (str_is(&v[M_BUTTON], "middle")) out->button = "middle";
            else if (str_is(&v[M_BUTTON], "right")) out->button = "right";
            else FAIL("unknown button");
        }
        if (int_in(&v[M_CLICKS], HAS(M_CLICKS), 1, 3, 1, &out->clicks) < 0) FAIL("clicks must be 1 to 3");
        return 0;
    }
    if (wheel) {
        out->kind = LIVEVIEW_WHEEL;
        if ((HAS(M_DX) && number_of(&v[M_DX], &out->dx) < 0) || (HAS(M_DY) && number_of(&v[M_DY], &out->dy) < 0) ||
            fabs(out->dx) > 10000 || fabs(out->dy) > 10000)
            FAIL("dx and dy must be numbers within 10000");
        return 0;
    }
    if (!HAS(M_ACTION)) FAIL("no action");
    if (str_is(&v[M_ACTION], "down")) out->kind = LIVEVIEW_KEY_DOWN;
    else if (str_is(&v[M_ACTION], "up")) out->kind = LIVEVIEW_KEY_UP;
    else FAIL("unknown key action");
    if (!HAS(M_KEY) || v[M_KEY].type != CDP_T_STRING || cdp_string_copy(&v[M_KEY], out->key, sizeof out->key) != 0 ||
        !out->key[0])
        FAIL("key must be a short string");
    if (HAS(M_CODE) && (v[M_CODE].type != CDP_T_STRING || cdp_string_copy(&v[M_CODE], out->code, sizeof out->code) != 0))
        FAIL("code must be a short string");
    if (HAS(M_TEXT) && (v[M_TEXT].type != CDP_T_STRING || cdp_string_copy(&v[M_TEXT], out->text, sizeof out->text) != 0))
        FAIL("text must be a short string");
    if (int_in(&v[M_KEYCODE], HAS(M_KEYCODE), 0, 255, 0, &out->key_code) < 0) FAIL("keyCode must be 0 to 255");
    return 0;
#undef HAS
#undef FAIL
}

/* `"name":"<s escaped>"` with the comma before it. */
static int add_string(buf_t *b, const char *name, const char *s) {
    buf_t tmp;
    buf_init(&tmp);
    jsonw_t w;
    jsonw_init(&w, &tmp);
    jsonw_string(&w, s);
    int rc = jsonw_failed(&w) ? -ENOMEM : 0;
    if (rc == 0) rc = buf_printf(b, ",\"%s\":", name);
    if (rc == 0) rc = buf_append(b, tmp.data, tmp.len);
    buf_free(&tmp);
    return rc;
}

static int finish(buf_t *b, char **out, size_t *out_len) {
    if (buf_append_str(b, "}}") < 0) {
        buf_free(b);
        return -ENOMEM;
    }
    *out = buf_steal(b, out_len);
    if (!*out) {
        buf_free(b);
        return -ENOMEM;
    }
    return 0;
}

static int mouse_command(const char *session, int64_t id, const char *type, double x, double y,
                         const liveview_input_t *in, char **out, size_t *out_len) {
    buf_t b;
    buf_init(&b);
    int rc = buf_printf(&b,
                        "{\"id\":%lld,\"sessionId\":\"%s\",\"method\":\"Input.dispatchMouseEvent\",\"params\":{"
                        "\"type\":\"%s\",\"x\":%.2f,\"y\":%.2f,\"modifiers\":%d",
                        (long long)id, session, type, x, y, in->modifiers);
    if (rc == 0 && in->kind == LIVEVIEW_WHEEL)
        rc = buf_printf(&b, ",\"deltaX\":%.2f,\"deltaY\":%.2f", in->dx, in->dy);
    else if (rc == 0 && in->kind != LIVEVIEW_MOUSE_MOVE && strcmp(type, "mouseMoved") != 0)
        rc = buf_printf(&b, ",\"button\":\"%s\",\"clickCount\":%d", in->button, in->clicks);
    if (rc < 0) {
        buf_free(&b);
        return -ENOMEM;
    }
    return finish(&b, out, out_len);
}

static int key_command(const char *session, int64_t id, const liveview_input_t *in, char **out, size_t *out_len) {
    /* keyDown with text types it; rawKeyDown (Enter without text, arrows, ...) only presses */
    const char *type = in->kind == LIVEVIEW_KEY_UP ? "keyUp" : in->text[0] ? "keyDown" : "rawKeyDown";
    buf_t b;
    buf_init(&b);
    int rc = buf_printf(&b,
                        "{\"id\":%lld,\"sessionId\":\"%s\",\"method\":\"Input.dispatchKeyEvent\",\"params\":{"
                        "\"type\":\"%s\",\"modifiers\":%d",
                        (long long)id, session, type, in->modifiers);
    if (rc == 0) rc = add_string(&b, "key", in->key);
    if (rc == 0 && in->code[0]) rc = add_string(&b, "code", in->code);
    if (rc == 0 && in->text[0] && in->kind == LIVEVIEW_KEY_DOWN) rc = add_string(&b, "text", in->text);
    if (rc == 0 && in->key_code)
        rc = buf_printf(&b, ",\"windowsVirtualKeyCode\":%d,\"nativeVirtualKeyCode\":%d", in->key_code, in->key_code);
    if (rc < 0) {
        buf_free(&b);
        return -ENOMEM;
    }
    return finish(&b, out, out_len);
}

int liveview_input_commands(const liveview_input_t *in, double width, double height, const char *session,
                            int64_t id, char *out[LIVEVIEW_MAX_COMMANDS], size_t out_len[LIVEVIEW_MAX_COMMANDS],
                            int *n) {
    *n = 0;
    if (!(width > 0) || !(height > 0) || !isfinite(width) || !isfinite(height)) return -EINVAL;
    int rc = 0;
    double x = in->x * width, y = in->y * height;
    switch (in->kind) {
    case LIVEVIEW_MOUSE_DOWN:
        /* the pointer gets there first, as a real one would (hover, then press) */
        rc = mouse_command(session, id, "mouseMoved", x, y, in, &out[0], &out_len[0]);
        if (rc == 0) {
            *n = 1;
            rc = mouse_command(session, id - 1, "mousePressed", x, y, in, &out[1], &out_len[1]);
        }
        break;
    case LIVEVIEW_MOUSE_UP:
        rc = mouse_command(session, id, "mouseReleased", x, y, in, &out[0], &out_len[0]);
        break;
    case LIVEVIEW_MOUSE_MOVE:
        rc = mouse_command(session, id, "mouseMoved", x, y, in, &out[0], &out_len[0]);
        break;
    case LIVEVIEW_WHEEL:
        rc = mouse_command(session, id, "mouseWheel", x, y, in, &out[0], &out_len[0]);
        break;
    case LIVEVIEW_KEY_DOWN:
    case LIVEVIEW_KEY_UP:
        rc = key_command(session, id, in, &out[0], &out_len[0]);
        break;
    }
    if (rc < 0) {
        for (int i = 0; i < *n; i++) free(out[i]);
        *n = 0;
        return rc;
    }
    (*n)++;
    return 0;
}

int liveview_inspect_params(const char *params, size_t len, bool *input, const char **why) {
    *input = false;
    if (!params) return 0;
    cdp_value_t v;
    int rc = cdp_object_get(params, len, "input", 5, &v);
    if (rc == -ENOENT) return 0;
    if (rc != 0) {
        *why = "Page.inspect: params must be an object";
        return -EINVAL;
    }
    if (v.type != CDP_T_TRUE && v.type != CDP_T_FALSE) {
        *why = "Page.inspect: params.input must be a boolean";
        return -EINVAL;
    }
    *input = v.type == CDP_T_TRUE;
    return 0;
}
