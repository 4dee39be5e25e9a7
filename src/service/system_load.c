/* The machine's CPU and memory load, from /proc (see system_load.h). */
#include "service/system_load.h"

#include <stdio.h>
#include <string.h>

void system_load_init(system_load_t *l) {
    memset(l, 0, sizeof *l);
    l->cpu = -1;
}

void system_load_sample(system_load_t *l) {
    FILE *f = fopen("/proc/stat", "re");
    if (!f) return;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]);
    fclose(f);
    if (n < 4) return;
    uint64_t total = 0;
    for (int i = 0; i < 8; i++) total += v[i];
    uint64_t idle = v[3] + v[4]; /* idle + iowait */
    uint64_t busy = total - idle;
    if (l->total && total > l->total) l->cpu = (double)(busy - l->busy) / (double)(total - l->total);
    l->busy = busy;
    l->total = total;
}

double system_load_memory(void) {
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f) return -1;
    char line[256];
    unsigned long long total = 0, avail = 0;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "MemTotal: %llu kB", &total);
        sscanf(line, "MemAvailable: %llu kB", &avail);
    }
    fclose(f);
    if (!total || avail > total) return -1;
    return 1.0 - (double)avail / (double)total;
}
