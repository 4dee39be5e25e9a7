/* Unit tests of the admin command line (src/cli/admin.c): the exact output forms scripts
 * depend on, exit codes, and all-or-nothing imports. stdout/stderr (and stdin for "-") are
 * redirected to files around each call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/admin.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    char db[128];
    char out[65536];
    char err[65536];
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/browserd-cli-test-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(fx->db, sizeof fx->db, "%s/browserd.db", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    DIR *d = opendir(fx->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char file[512];
            snprintf(file, sizeof file, "%s/%s", fx->dir, e->d_name);
            unlink(file);
        }
        closedir(d);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void read_file(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs one command with stdin from `input_path` (or untouched when NULL); the output lands
 * in fx->out and fx->err. Returns the exit status. */
static int run_with_input(fixture_t *fx, const char *input_path, const char *first, ...) {
    char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 15; a = va_arg(ap, const char *)) argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;

    char out_path[160], err_path[160];
    snprintf(out_path, sizeof out_path, "%s/stdout", fx->dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", fx->dir);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2), saved_in = dup(0);
    int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(out_fd >= 0 && err_fd >= 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    close(out_fd);
    close(err_fd);
    if (input_path) {
        int in_fd = open(input_path, O_RDONLY);
        assert_true(in_fd >= 0);
        dup2(in_fd, 0);
        close(in_fd);
        clearerr(stdin);
    }
    int status = cli_admin_run(fx->db, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    dup2(saved_in, 0);
    close(saved_out);
    close(saved_err);
    close(saved_in);
    clearerr(stdin);
    read_file(out_path, fx->out, sizeof fx->out);
    read_file(err_path, fx->err, sizeof fx->err);
    return status;
}

#define run(fx, ...) run_with_input(fx, NULL, __VA_ARGS__, (const char *)NULL)

static bool db_exists(fixture_t *fx) {
    struct stat st;
    return stat(fx->db, &st) == 0;
}

static void write_text(fixture_t *fx, const char *name, const char *text, char *path, size_t path_cap) {
    snprintf(path, path_cap, "%s/%s", fx->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *session_line(unsigned n, const char *status) {
    static char line[600];
    bool running = strcmp(status, "running") == 0, failed = strcmp(status, "failed") == 0;
    snprintf(line, sizeof line,
             "{\"session_id\":\"0190a1b2-c3d4-7e5f-8a9b-%012x\",\"api_name\":\"zone1\",\"status\":\"%s\","
             "\"target_url\":\"https://example.com/\",\"end_url\":\"https://example.com/x\",\"navigations\":2,"
             "\"timestamp\":\"2025-12-01T10:00:00Z\",\"duration\":%s,\"captcha\":\"none\",\"bandwidth\":10,"
             "\"error\":%s}\n",
             n, status, running ? "null" : "1.5",
             failed ? "{\"code\":\"session_timeout\",\"message\":\"too long\"}" : "null");
    return line;
}

static void test_usage_errors(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run_with_input(fx, NULL, NULL), 2);
    assert_non_null(strstr(fx->err, "browserd: no command given"));
    assert_int_equal(run(fx, "frobnicate"), 2);
    assert_non_null(strstr(fx->err, "browserd: unknown command \"frobnicate\""));
    assert_non_null(strstr(fx->err, "sessions import CUSTOMER_ID FILE"));
    assert_int_equal(run(fx, "customer", "remove", "acme"), 2);
    assert_int_equal(run(fx, "customer", "add"), 2);
    assert_int_equal(run(fx, "customer", "add", "a", "b"), 2);
    assert_int_equal(run(fx, "customer", "add", "Acme"), 2);
    assert_non_null(strstr(fx->err, "invalid customer id"));
    assert_int_equal(run(fx, "zone", "add", "acme", "bad-zone"), 2);
    assert_int_equal(run(fx, "key", "revoke", "key_xyz"), 2);
    assert_int_equal(run(fx, "sessions", "import", "acme"), 2);
    assert_string_equal(fx->out, "");
    /* Usage errors never create the database. */
    assert_false(db_exists(fx));
    assert_non_null(strstr(cli_admin_usage(), "key list CUSTOMER_ID"));
}

static void test_customers_keys_zones(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_string_equal(fx->out, "acme\n");
    assert_string_equal(fx->err, "");
    assert_int_equal(run(fx, "customer", "add", "acme"), 1);
    assert_string_equal(fx->out, "");
    assert_string_equal(fx->err, "browserd: customer acme already exists\n");

    assert_int_equal(run(fx, "key", "add", "acme"), 0);
    assert_int_equal(strlen(fx->out), 65);
    assert_int_equal(strspn(fx->out, "0123456789abcdef"), 64);
    assert_int_equal(fx->out[64], '\n');
    char key[65];
    memcpy(key, fx->out, 64);
    key[64] = '\0';
    assert_int_equal(run(fx, "key", "add", "acme"), 0);
    assert_int_equal(run(fx, "key", "add", "nobody"), 1);
    assert_string_equal(fx->err, "browserd: unknown customer nobody\n");

    assert_int_equal(run(fx, "key", "list", "acme"), 0);
    /* key_<12 hex> TAB YYYY-MM-DDTHH:MM:SSZ TAB active, twice. */
    char id1[17], id2[17], created[21], status[16];
    assert_int_equal(sscanf(fx->out, "%16[^\t]\t%20[^\t]\t%15[^\n]", id1, created, status), 3);
    assert_int_equal(strlen(created), 20);
    assert_int_equal(created[10], 'T');
    assert_int_equal(created[19], 'Z');
    assert_string_equal(status, "active");
    const char *second = strchr(fx->out, '\n') + 1;
    assert_int_equal(sscanf(second, "%16[^\t]\t%20[^\t]\t%15[^\n]", id2, created, status), 3);
    assert_int_equal(strlen(fx->out), 2 * (16 + 1 + 20 + 1 + 6 + 1));

    assert_int_equal(run(fx, "key", "revoke", id1), 0);
    char expect[32];
    snprintf(expect, sizeof expect, "%s\n", id1);
    assert_string_equal(fx->out, expect);
    assert_int_equal(run(fx, "key", "list", "acme"), 0);
    assert_non_null(strstr(fx->out, "\trevoked\n"));
    assert_non_null(strstr(fx->out, "\tactive\n"));
    assert_int_equal(run(fx, "key", "revoke", "key_000000000000"), 1);
    assert_string_equal(fx->err, "browserd: unknown key key_000000000000\n");
    assert_int_equal(run(fx, "key", "list", "nobody"), 1);

    assert_int_equal(run(fx, "zone", "add", "acme", "zone1"), 0);
    assert_int_equal(strlen(fx->out), 25);
    assert_int_equal(strspn(fx->out, "abcdefghijklmnopqrstuvwxyz0123456789"), 24);
    char password[25];
    memcpy(password, fx->out, 24);
    password[24] = '\0';
    assert_int_equal(run(fx, "zone", "add", "acme", "zone1"), 1);
    assert_non_null(strstr(fx->err, "already exists"));
    assert_int_equal(run(fx, "zone", "add", "nobody", "zone1"), 1);

    /* zone set-proxy: validated before the database is touched, printed without the password */
    assert_int_equal(run(fx, "zone", "set-proxy", "acme", "zone1", "http://user:secret@127.0.0.1:3128"), 0);
    assert_string_equal(fx->out, "http://user:***@127.0.0.1:3128\n");
    assert_int_equal(run(fx, "zone", "set-proxy", "acme", "zone1", "socks5://h:1"), 2);
    assert_string_equal(fx->out, "");
    assert_int_equal(run(fx, "zone", "set-proxy", "acme", "nozone", "http://h:1"), 1);
    assert_non_null(strstr(fx->err, "no zone"));
    assert_int_equal(run(fx, "zone", "set-proxy", "acme", "zone1"), 2);

    /* What the commands printed works against the store. */
    store_t *s = NULL;
    char err[256], customer[33];
    assert_int_equal(store_open(fx->db, &s, err, sizeof err), 0);
    assert_int_equal(store_key_authenticate(s, key, 64, customer), -ENOENT); /* revoked: it was key 1 */
    assert_int_equal(store_zone_check(s, "acme", "zone1", password), 0);
    char upstream[128];
    assert_int_equal(store_zone_authorize(s, "acme", "zone1", password, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "http://user:secret@127.0.0.1:3128");
    store_close(s);
    assert_int_equal(run(fx, "zone", "set-proxy", "acme", "zone1", "none"), 0);
    assert_string_equal(fx->out, "none\n");
}

static int64_t stored_sessions(fixture_t *fx) {
    store_t *s = NULL;
    char err[256];
    int64_t seq = -1;
    assert_int_equal(store_open(fx->db, &s, err, sizeof err), 0);
    assert_int_equal(store_change_seq(s, &seq), 0);
    store_close(s);
    return seq;
}

static void test_import(void **state) {
    fixture_t *fx = *state;
    char path[200], text[8192] = "";
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);

    /* A bad third record: reported by line (blank lines count), nothing imported. */
    strcat(text, session_line(1, "finished"));
    strcat(text, "\n   \r\n");
    strcat(text, session_line(2, "running"));
    strcat(text, "{\"session_id\":1}\n");
    strcat(text, session_line(3, "failed"));
    write_text(fx, "bad.jsonl", text, path, sizeof path);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 1);
    assert_string_equal(fx->out, "");
    assert_string_equal(fx->err, "browserd: line 5: missing key \"api_name\"\n");
    assert_int_equal(stored_sessions(fx), 0);

    /* A duplicate id (differing in case) on line 3. */
    text[0] = '\0';
    strcat(text, session_line(0xab, "finished"));
    strcat(text, session_line(2, "finished"));
    char upper[600];
    snprintf(upper, sizeof upper, "%s", session_line(0xab, "failed"));
    char *hex = strstr(upper, "0000000000ab");
    memcpy(hex, "0000000000AB", 12);
    strcat(text, upper);
    write_text(fx, "dup.jsonl", text, path, sizeof path);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 1);
    assert_string_equal(fx->err,
                        "browserd: line 3: session_id 0190a1b2-c3d4-7e5f-8a9b-0000000000AB already exists\n");
    assert_int_equal(stored_sessions(fx), 0);

    /* A good file with CRLF endings, blank lines and no final newline. */
    text[0] = '\0';
    for (unsigned i = 1; i <= 5; i++) {
        char line[600];
        snprintf(line, sizeof line, "%s", session_line(i, i % 2 ? "finished" : "running"));
        line[strlen(line) - 1] = '\0';
        strcat(text, line);
        strcat(text, i < 5 ? "\r\n\n" : "");
    }
    write_text(fx, "good.jsonl", text, path, sizeof path);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 0);
    assert_string_equal(fx->out, "5\n");
    assert_string_equal(fx->err, "");
    assert_int_equal(stored_sessions(fx), 5);

    /* The same file again: line 1 is a duplicate now. */
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 1);
    assert_non_null(strstr(fx->err, "browserd: line 1: session_id"));

    /* From stdin, with a byte order mark. */
    strcpy(text, "\xEF\xBB\xBF");
    strcat(text, session_line(100, "failed"));
    strcat(text, session_line(101, "finished"));
    write_text(fx, "stdin.jsonl", text, path, sizeof path);
    assert_int_equal(run_with_input(fx, path, "sessions", "import", "acme", "-", (const char *)NULL), 0);
    assert_string_equal(fx->out, "2\n");
    assert_int_equal(stored_sessions(fx), 7);

    /* An empty file imports nothing, successfully. */
    write_text(fx, "empty.jsonl", "", path, sizeof path);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 0);
    assert_string_equal(fx->out, "0\n");

    assert_int_equal(run(fx, "sessions", "import", "nobody", path), 1);
    assert_string_equal(fx->err, "browserd: unknown customer nobody\n");
    assert_int_equal(run(fx, "sessions", "import", "acme", "/nonexistent/file.jsonl"), 1);
    assert_non_null(strstr(fx->err, "browserd: cannot open /nonexistent/file.jsonl"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customers_keys_zones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
