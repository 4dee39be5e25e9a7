/* Unit tests of the admin command line (src/cli/admin.c), one behaviour per test: the exact
 * output forms scripts depend on, exit codes, and all-or-nothing imports. stdout/stderr (and
 * stdin for "-") are redirected to files around each call. */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* A usage error: exit status 2, nothing on stdout, and no database file created. */
static void assert_usage_error(fixture_t *fx, int status) {
    assert_int_equal(status, 2);
    assert_string_equal(fx->out, "");
    assert_false(db_exists(fx));
}

/* ---- usage ---- */

static void test_no_command_is_a_usage_error(void **state) {
    fixture_t *fx = *state;
    assert_usage_error(fx, run_with_input(fx, NULL, NULL));
    assert_non_null(strstr(fx->err, "browserd: no command given"));
}

static void test_unknown_command_prints_the_usage(void **state) {
    fixture_t *fx = *state;
    assert_usage_error(fx, run(fx, "frobnicate"));
    assert_non_null(strstr(fx->err, "browserd: unknown command \"frobnicate\""));
    assert_non_null(strstr(fx->err, "sessions import CUSTOMER_ID FILE"));
    assert_usage_error(fx, run(fx, "customer", "remove", "acme"));
    assert_non_null(strstr(fx->err, "browserd: unknown command \"customer remove\""));
}

static void test_wrong_number_of_arguments_is_a_usage_error(void **state) {
    fixture_t *fx = *state;
    assert_usage_error(fx, run(fx, "customer", "add"));
    assert_usage_error(fx, run(fx, "customer", "add", "a", "b"));
    assert_usage_error(fx, run(fx, "sessions", "import", "acme"));
    assert_usage_error(fx, run(fx, "zone", "set-proxy", "acme", "zone1"));
}

static void test_malformed_arguments_are_usage_errors(void **state) {
    fixture_t *fx = *state;
    assert_usage_error(fx, run(fx, "customer", "add", "Acme"));
    assert_non_null(strstr(fx->err, "invalid customer id"));
    assert_usage_error(fx, run(fx, "zone", "add", "acme", "bad-zone"));
    assert_non_null(strstr(fx->err, "invalid zone name"));
    assert_usage_error(fx, run(fx, "key", "revoke", "key_xyz"));
    assert_non_null(strstr(fx->err, "invalid key id"));
}

static void test_usage_text_lists_the_commands(void **state) {
    (void)state;
    assert_non_null(strstr(cli_admin_usage(), "key list CUSTOMER_ID"));
    assert_non_null(strstr(cli_admin_usage(), "sessions import CUSTOMER_ID FILE"));
}

/* ---- customers ---- */

static void test_customer_add_prints_the_id(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_string_equal(fx->out, "acme\n");
    assert_string_equal(fx->err, "");
}

static void test_customer_add_of_existing_customer_fails(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_int_equal(run(fx, "customer", "add", "acme"), 1);
    assert_string_equal(fx->out, "");
    assert_string_equal(fx->err, "browserd: customer acme already exists\n");
}

/* ---- keys ---- */

/* Customer acme with two keys; the first one's text in key (65 bytes). */
static void add_customer_with_two_keys(fixture_t *fx, char *key) {
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_int_equal(run(fx, "key", "add", "acme"), 0);
    memcpy(key, fx->out, 64);
    key[64] = '\0';
    assert_int_equal(run(fx, "key", "add", "acme"), 0);
}

/* The key ids of `key list`, oldest first. */
static void listed_key_ids(fixture_t *fx, char id1[17], char id2[17]) {
    char created[21], status[16];
    assert_int_equal(run(fx, "key", "list", "acme"), 0);
    assert_int_equal(sscanf(fx->out, "%16[^\t]\t%20[^\t]\t%15[^\n]", id1, created, status), 3);
    assert_int_equal(sscanf(strchr(fx->out, '\n') + 1, "%16[^\t]\t%20[^\t]\t%15[^\n]", id2, created, status), 3);
}

static void test_key_add_prints_a_64_hex_key(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_int_equal(run(fx, "key", "add", "acme"), 0);
    assert_int_equal(strlen(fx->out), 65);
    assert_int_equal(strspn(fx->out, "0123456789abcdef"), 64);
    assert_int_equal(fx->out[64], '\n');
    assert_string_equal(fx->err, "");
}

static void test_key_add_for_unknown_customer_fails(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_int_equal(run(fx, "key", "add", "nobody"), 1);
    assert_string_equal(fx->out, "");
    assert_string_equal(fx->err, "browserd: unknown customer nobody\n");
}

/* key_<12 hex> TAB YYYY-MM-DDTHH:MM:SSZ TAB active, one line per key. */
static void test_key_list_prints_id_creation_and_state(void **state) {
    fixture_t *fx = *state;
    char key[65];
    add_customer_with_two_keys(fx, key);
    assert_int_equal(run(fx, "key", "list", "acme"), 0);
    char id1[17], id2[17], created[21], status[16];
    assert_int_equal(sscanf(fx->out, "%16[^\t]\t%20[^\t]\t%15[^\n]", id1, created, status), 3);
    assert_int_equal(strlen(created), 20);
    assert_int_equal(created[10], 'T');
    assert_int_equal(created[19], 'Z');
    assert_string_equal(status, "active");
    const char *second = strchr(fx->out, '\n') + 1;
    assert_int_equal(sscanf(second, "%16[^\t]\t%20[^\t]\t%15[^\n]", id2, created, status), 3);
    assert_string_equal(status, "active");
    assert_int_equal(strlen(fx->out), 2 * (16 + 1 + 20 + 1 + 6 + 1));
}

static void test_key_list_for_unknown_customer_fails(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_int_equal(run(fx, "key", "list", "nobody"), 1);
    assert_string_equal(fx->out, "");
    assert_string_equal(fx->err, "browserd: unknown customer nobody\n");
}

static void test_key_revoke_prints_the_id_and_list_shows_it_revoked(void **state) {
    fixture_t *fx = *state;
    char key[65], id1[17], id2[17], expect[32];
    add_customer_with_two_keys(fx, key);
    listed_key_ids(fx, id1, id2);
    assert_int_equal(run(fx, "key", "revoke", id1), 0);
    snprintf(expect, sizeof expect, "%s\n", id1);
    assert_string_equal(fx->out, expect);
    assert_int_equal(run(fx, "key", "list", "acme"), 0);
    snprintf(expect, sizeof expect, "%s\t", id1);
    assert_memory_equal(fx->out, expect, 17);
    assert_non_null(strstr(fx->out, "\trevoked\n"));
    assert_non_null(strstr(fx->out, "\tactive\n"));
}

static void test_key_revoke_of_unknown_key_fails(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_int_equal(run(fx, "key", "revoke", "key_000000000000"), 1);
    assert_string_equal(fx->out, "");
    assert_string_equal(fx->err, "browserd: unknown key key_000000000000\n");
}

/* The printed key authenticates against the store until it is revoked. */
static void test_printed_key_authenticates_until_revoked(void **state) {
    fixture_t *fx = *state;
    char key[65], id1[17], id2[17], err[256], customer[33];
    add_customer_with_two_keys(fx, key);
    store_t *s = NULL;
    assert_int_equal(store_open(fx->db, &s, err, sizeof err), 0);
    assert_int_equal(store_key_authenticate(s, key, 64, customer), 0);
    assert_string_equal(customer, "acme");
    listed_key_ids(fx, id1, id2);
    assert_int_equal(run(fx, "key", "revoke", id1), 0);
    assert_int_equal(store_key_authenticate(s, key, 64, customer), -ENOENT);
    store_close(s);
}

/* ---- zones ---- */

/* Customer acme with zone1; its password in password (25 bytes). */
static void add_customer_with_zone(fixture_t *fx, char *password) {
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_int_equal(run(fx, "zone", "add", "acme", "zone1"), 0);
    memcpy(password, fx->out, 24);
    password[24] = '\0';
}

static void test_zone_add_prints_a_24_character_password(void **state) {
    fixture_t *fx = *state;
    char password[25];
    add_customer_with_zone(fx, password);
    assert_int_equal(strlen(fx->out), 25);
    assert_int_equal(strspn(fx->out, "abcdefghijklmnopqrstuvwxyz0123456789"), 24);
    assert_int_equal(fx->out[24], '\n');
    assert_string_equal(fx->err, "");
}

static void test_zone_add_of_existing_zone_fails(void **state) {
    fixture_t *fx = *state;
    char password[25];
    add_customer_with_zone(fx, password);
    assert_int_equal(run(fx, "zone", "add", "acme", "zone1"), 1);
    assert_string_equal(fx->out, "");
    assert_non_null(strstr(fx->err, "already exists"));
}

static void test_zone_add_for_unknown_customer_fails(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_int_equal(run(fx, "zone", "add", "nobody", "zone1"), 1);
    assert_string_equal(fx->out, "");
    assert_string_equal(fx->err, "browserd: unknown customer nobody\n");
}

static void test_printed_zone_password_is_accepted_by_the_store(void **state) {
    fixture_t *fx = *state;
    char password[25], err[256];
    add_customer_with_zone(fx, password);
    store_t *s = NULL;
    assert_int_equal(store_open(fx->db, &s, err, sizeof err), 0);
    assert_int_equal(store_zone_check(s, "acme", "zone1", password), 0);
    store_close(s);
}

/* The URL is stored as given, and printed without its password. */
static void test_zone_set_proxy_stores_the_url_and_hides_its_password(void **state) {
    fixture_t *fx = *state;
    char password[25], err[256], upstream[128];
    add_customer_with_zone(fx, password);
    assert_int_equal(run(fx, "zone", "set-proxy", "acme", "zone1", "http://user:secret@127.0.0.1:3128"), 0);
    assert_string_equal(fx->out, "http://user:***@127.0.0.1:3128\n");
    store_t *s = NULL;
    assert_int_equal(store_open(fx->db, &s, err, sizeof err), 0);
    assert_int_equal(store_zone_authorize(s, "acme", "zone1", password, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "http://user:secret@127.0.0.1:3128");
    store_close(s);
}

/* Validated before the database is touched. */
static void test_zone_set_proxy_refuses_a_url_it_cannot_use(void **state) {
    fixture_t *fx = *state;
    assert_usage_error(fx, run(fx, "zone", "set-proxy", "acme", "zone1", "socks5://h:1"));
    assert_non_null(strstr(fx->err, "invalid upstream proxy URL"));
}

static void test_zone_set_proxy_of_unknown_zone_fails(void **state) {
    fixture_t *fx = *state;
    char password[25];
    add_customer_with_zone(fx, password);
    assert_int_equal(run(fx, "zone", "set-proxy", "acme", "nozone", "http://h:1"), 1);
    assert_string_equal(fx->out, "");
    assert_non_null(strstr(fx->err, "no zone"));
}

static void test_zone_set_proxy_none_removes_it(void **state) {
    fixture_t *fx = *state;
    char password[25], err[256], upstream[128] = "stale";
    add_customer_with_zone(fx, password);
    assert_int_equal(run(fx, "zone", "set-proxy", "acme", "zone1", "http://h:1"), 0);
    assert_int_equal(run(fx, "zone", "set-proxy", "acme", "zone1", "none"), 0);
    assert_string_equal(fx->out, "none\n");
    store_t *s = NULL;
    assert_int_equal(store_open(fx->db, &s, err, sizeof err), 0);
    assert_int_equal(store_zone_authorize(s, "acme", "zone1", password, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "");
    store_close(s);
}

/* ---- imports ---- */

static int64_t stored_sessions(fixture_t *fx) {
    store_t *s = NULL;
    char err[256];
    int64_t seq = -1;
    assert_int_equal(store_open(fx->db, &s, err, sizeof err), 0);
    assert_int_equal(store_change_seq(s, &seq), 0);
    store_close(s);
    return seq;
}

/* A good file with CRLF endings, blank lines and no final newline: 5 records. */
static void write_good_file(fixture_t *fx, char *path, size_t path_cap) {
    char text[8192] = "";
    for (unsigned i = 1; i <= 5; i++) {
        char line[600];
        snprintf(line, sizeof line, "%s", session_line(i, i % 2 ? "finished" : "running"));
        line[strlen(line) - 1] = '\0';
        strcat(text, line);
        strcat(text, i < 5 ? "\r\n\n" : "");
    }
    write_text(fx, "good.jsonl", text, path, path_cap);
}

static void test_import_prints_the_number_imported(void **state) {
    fixture_t *fx = *state;
    char path[200];
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    write_good_file(fx, path, sizeof path);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 0);
    assert_string_equal(fx->out, "5\n");
    assert_string_equal(fx->err, "");
    assert_int_equal(stored_sessions(fx), 5);
}

/* A bad third record: reported by line (blank lines count), nothing imported. */
static void test_import_of_a_bad_line_names_it_and_imports_nothing(void **state) {
    fixture_t *fx = *state;
    char path[200], text[8192] = "";
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
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
}

/* A duplicate id (differing in case) on line 3. */
static void test_import_of_a_duplicate_id_names_its_line_and_imports_nothing(void **state) {
    fixture_t *fx = *state;
    char path[200], text[8192] = "", upper[600];
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    strcat(text, session_line(0xab, "finished"));
    strcat(text, session_line(2, "finished"));
    snprintf(upper, sizeof upper, "%s", session_line(0xab, "failed"));
    char *hex = strstr(upper, "0000000000ab");
    memcpy(hex, "0000000000AB", 12);
    strcat(text, upper);
    write_text(fx, "dup.jsonl", text, path, sizeof path);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 1);
    assert_string_equal(fx->out, "");
    assert_string_equal(fx->err,
                        "browserd: line 3: session_id 0190a1b2-c3d4-7e5f-8a9b-0000000000AB already exists\n");
    assert_int_equal(stored_sessions(fx), 0);
}

/* The same file again: line 1 is a duplicate now. */
static void test_import_of_the_same_file_twice_fails_the_second_time(void **state) {
    fixture_t *fx = *state;
    char path[200];
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    write_good_file(fx, path, sizeof path);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 0);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 1);
    assert_non_null(strstr(fx->err, "browserd: line 1: session_id"));
    assert_int_equal(stored_sessions(fx), 5);
}

static void test_import_reads_stdin_with_a_byte_order_mark(void **state) {
    fixture_t *fx = *state;
    char path[200], text[8192] = "\xEF\xBB\xBF";
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    strcat(text, session_line(100, "failed"));
    strcat(text, session_line(101, "finished"));
    write_text(fx, "stdin.jsonl", text, path, sizeof path);
    assert_int_equal(run_with_input(fx, path, "sessions", "import", "acme", "-", (const char *)NULL), 0);
    assert_string_equal(fx->out, "2\n");
    assert_int_equal(stored_sessions(fx), 2);
}

/* An empty file imports nothing, successfully. */
static void test_import_of_an_empty_file_imports_nothing(void **state) {
    fixture_t *fx = *state;
    char path[200];
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    write_text(fx, "empty.jsonl", "", path, sizeof path);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 0);
    assert_string_equal(fx->out, "0\n");
    assert_int_equal(stored_sessions(fx), 0);
}

static void test_import_for_unknown_customer_fails(void **state) {
    fixture_t *fx = *state;
    char path[200];
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    write_good_file(fx, path, sizeof path);
    assert_int_equal(run(fx, "sessions", "import", "nobody", path), 1);
    assert_string_equal(fx->err, "browserd: unknown customer nobody\n");
    assert_int_equal(stored_sessions(fx), 0);
}

static void test_import_of_a_missing_file_fails(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    assert_int_equal(run(fx, "sessions", "import", "acme", "/nonexistent/file.jsonl"), 1);
    assert_non_null(strstr(fx->err, "browserd: cannot open /nonexistent/file.jsonl"));
}

/* A line longer than 1 MiB is refused by its number, not parsed. */
static void test_import_refuses_an_overlong_line(void **state) {
    fixture_t *fx = *state;
    char path[200];
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    size_t n = 1024 * 1024 + 1;
    char *text = malloc(n + 2);
    assert_non_null(text);
    memset(text, ' ', n);
    text[0] = '{';
    text[n - 1] = '}';
    text[n] = '\n';
    text[n + 1] = '\0';
    write_text(fx, "long.jsonl", text, path, sizeof path);
    free(text);
    assert_int_equal(run(fx, "sessions", "import", "acme", path), 1);
    assert_string_equal(fx->err, "browserd: line 1: longer than 1048576 bytes\n");
    assert_int_equal(stored_sessions(fx), 0);
}

/* The address space in use, from /proc/self/statm (pages). */
static size_t address_space_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    unsigned long pages = 0;
    assert_int_equal(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Running out of memory while reading a line fails the import: it is not taken for the end
 * of the file (which would commit the lines before it as the whole import). The command runs
 * in a child process under an address-space limit below what the long line needs. */
static void test_import_that_runs_out_of_memory_imports_nothing(void **state) {
    fixture_t *fx = *state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* the sanitizer's shadow memory does not fit under an address-space limit */
#endif
    char path[200];
    assert_int_equal(run(fx, "customer", "add", "acme"), 0);
    snprintf(path, sizeof path, "%s/huge.jsonl", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(session_line(1, "finished"), f);
    static char spaces[1 << 20];
    memset(spaces, ' ', sizeof spaces);
    for (int i = 0; i < 256; i++) assert_int_equal(fwrite(spaces, 1, sizeof spaces, f), sizeof spaces);
    fputs("\n", f);
    fputs(session_line(2, "finished"), f);
    assert_int_equal(fclose(f), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t limit = address_space_bytes() + ((size_t)96 << 20);
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(99);
        _exit(run(fx, "sessions", "import", "acme", path));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_int_equal(stored_sessions(fx), 0);
}

int main(void) {
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_no_command_is_a_usage_error),
        TEST(test_unknown_command_prints_the_usage),
        TEST(test_wrong_number_of_arguments_is_a_usage_error),
        TEST(test_malformed_arguments_are_usage_errors),
        TEST(test_usage_text_lists_the_commands),
        TEST(test_customer_add_prints_the_id),
        TEST(test_customer_add_of_existing_customer_fails),
        TEST(test_key_add_prints_a_64_hex_key),
        TEST(test_key_add_for_unknown_customer_fails),
        TEST(test_key_list_prints_id_creation_and_state),
        TEST(test_key_list_for_unknown_customer_fails),
        TEST(test_key_revoke_prints_the_id_and_list_shows_it_revoked),
        TEST(test_key_revoke_of_unknown_key_fails),
        TEST(test_printed_key_authenticates_until_revoked),
        TEST(test_zone_add_prints_a_24_character_password),
        TEST(test_zone_add_of_existing_zone_fails),
        TEST(test_zone_add_for_unknown_customer_fails),
        TEST(test_printed_zone_password_is_accepted_by_the_store),
        TEST(test_zone_set_proxy_stores_the_url_and_hides_its_password),
        TEST(test_zone_set_proxy_refuses_a_url_it_cannot_use),
        TEST(test_zone_set_proxy_of_unknown_zone_fails),
        TEST(test_zone_set_proxy_none_removes_it),
        TEST(test_import_prints_the_number_imported),
        TEST(test_import_of_a_bad_line_names_it_and_imports_nothing),
        TEST(test_import_of_a_duplicate_id_names_its_line_and_imports_nothing),
        TEST(test_import_of_the_same_file_twice_fails_the_second_time),
        TEST(test_import_reads_stdin_with_a_byte_order_mark),
        TEST(test_import_of_an_empty_file_imports_nothing),
        TEST(test_import_for_unknown_customer_fails),
        TEST(test_import_of_a_missing_file_fails),
        TEST(test_import_refuses_an_overlong_line),
        TEST(test_import_that_runs_out_of_memory_imports_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
