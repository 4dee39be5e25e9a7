/* The query engine alone, without HTTP: loads a database's sessions into a catalog (timed),
 * then runs each query shape of a shapes file repeatedly through catalog_list, writing the
 * API's response body as GET /browser_sessions does (api_responses_list), and prints the minimum and median time per shape. The minimum is the engine's own cost even
 * on a busy machine; compare it with the HTTP figures of bench/api_bench.sh.
 *   catalog_bench DB CUSTOMER SHAPES.tsv [REPEAT]        (e.g. bench/shapes.tsv) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_responses.h"
#include "catalog/catalog.h"
#include "catalog/catalog_sync.h"
#include "session/session_query.h"
#include "store/store.h"

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: catalog_bench DB CUSTOMER SHAPES.tsv [REPEAT]\n");
        return 2;
    }
    int repeat = argc > 4 ? atoi(argv[4]) : 200;
    if (repeat < 1) repeat = 1;
    char err[256] = "";
    store_t *store = NULL;
    if (store_open(argv[1], &store, err, sizeof err) < 0) {
        fprintf(stderr, "catalog_bench: %s\n", err);
        return 1;
    }
    catalog_t *cat = catalog_new();
    double t0 = now_us();
    int rc = catalog_sync(cat, store);
    double load_ms = (now_us() - t0) / 1e3;
    if (rc < 0 || !cat) {
        fprintf(stderr, "catalog_bench: load failed (%d)\n", rc);
        return 1;
    }
    printf("catalog load: %zu sessions in %.0f ms\n", catalog_size(cat), load_ms);
    printf("%-24s %10s %10s %10s\n", "shape", "min us", "median us", "total");
    FILE *f = fopen(argv[3], "r");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    char line[4096];
    double *times = malloc((size_t)repeat * sizeof *times);
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\r\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        const char *path = tab + 1, *qs = strchr(path, '?');
        session_query_t q;
        char details[256];
        if (session_query_parse(qs ? qs + 1 : NULL, qs ? strlen(qs + 1) : 0, &q, details, sizeof details) < 0) {
            fprintf(stderr, "%s: %s\n", line, details);
            continue;
        }
        buf_t out;
        buf_init(&out);
        for (int i = 0; i < repeat; i++) {
            buf_reset(&out);
            double s = now_us();
            api_responses_list(&out, cat, argv[2], &q);
            times[i] = now_us() - s;
        }
        const char *total = strstr(out.data, "\"total\":");
        qsort(times, (size_t)repeat, sizeof *times, cmp_double);
        printf("%-24s %10.1f %10.1f %10ld\n", line, times[0], times[repeat / 2], total ? atol(total + 8) : -1L);
        buf_free(&out);
        session_query_free(&q);
    }
    fclose(f);
    free(times);
    catalog_free(cat);
    store_close(store);
    return 0;
}
