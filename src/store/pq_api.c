#include "store/pq_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

pq_api_t pq_api;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

/* The names as strings, before this file's macros turn them into pointers. */
#undef PQclear
#undef PQcmdTuples
#undef PQconnectdb
#undef PQconnectdbParams
#undef PQconninfoFree
#undef PQconninfoParse
#undef PQconsumeInput
#undef PQerrorMessage
#undef PQexec
#undef PQexecParams
#undef PQexecPrepared
#undef PQfinish
#undef PQfreemem
#undef PQgetResult
#undef PQgetisnull
#undef PQgetvalue
#undef PQnotifies
#undef PQntuples
#undef PQprepare
#undef PQputCopyData
#undef PQputCopyEnd
#undef PQresultErrorField
#undef PQresultErrorMessage
#undef PQresultStatus
#undef PQsocket
#undef PQstatus
#undef PQtransactionStatus

static void load(void) {
    /* RTLD_NODELETE: the pointers must outlive any dlclose (there is none, but say so) */
    void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!lib) {
        snprintf(load_error, sizeof load_error,
                 "the PostgreSQL store needs libpq (Debian package libpq5), which could not be loaded: %s", dlerror());
        return;
    }
    pq_api_t api;
#define PQ_API_FIND(name)                                                                                        \
    *(void **)&api.name = dlsym(lib, #name);                                                                    \
    if (!api.name) {                                                                                            \
        snprintf(load_error, sizeof load_error, "the libpq found (libpq.so.5) has no %s: it is too old", #name); \
        return;                                                                                                 \
    }
    PQ_API_FUNCTIONS(PQ_API_FIND)
#undef PQ_API_FIND
    pq_api = api;
}

int pq_api_load(char *err, size_t err_cap) {
    pthread_once(&once, load);
    if (!pq_api.PQconnectdbParams) {
        if (err && err_cap) snprintf(err, err_cap, "%s", load_error);
        return -1;
    }
    return 0;
}
