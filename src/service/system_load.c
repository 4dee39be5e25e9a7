/* The machine's CPU and memory load, from /proc (see system_load.h). */
#include "service/system_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

double system_load_cpu(void) {
    double avg[1];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (getloadavg(avg, 1) != 1 || cores < 1) return -1;
    return avg[0] / (double)cores;
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
