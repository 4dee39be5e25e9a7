/* libpq, loaded the first time a PostgreSQL store is opened instead of linked into every
 * browserd. Linking it made the dynamic loader map and relocate libpq and the sixteen
 * libraries it needs (Kerberos, LDAP, SASL, GnuTLS with its constructors) at every start:
 * about 3.4 MB of a SQLite-only daemon's 12.5 MB idle RSS, for code it never runs.
 *
 * The PostgreSQL backend (pg_*.c) includes this header instead of <libpq-fe.h>: each libpq
 * function it calls is a macro for a pointer of pq_api, filled by pq_api_load. The types and
 * constants are libpq's own (from <libpq-fe.h>, a build dependency as before).
 *
 * Threading: pq_api_load may be called from any thread, any number of times (it loads once);
 * the pointers are read-only afterwards. Nothing is ever unloaded. */
#ifndef BROWSERD_STORE_PQ_API_H
#define BROWSERD_STORE_PQ_API_H

#include <libpq-fe.h>
#include <stddef.h>

/* X(function) for every libpq function browserd calls: add one here to call it. */
#define PQ_API_FUNCTIONS(X)                                                                                       \
    X(PQclear) X(PQcmdTuples) X(PQconnectdb) X(PQconnectdbParams) X(PQconninfoFree) X(PQconninfoParse)              \
    X(PQconsumeInput) X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQexecPrepared) X(PQfinish) X(PQfreemem)        \
    X(PQgetResult) X(PQgetisnull) X(PQgetvalue) X(PQnotifies) X(PQntuples) X(PQprepare) X(PQputCopyData)            \
    X(PQputCopyEnd) X(PQresultErrorField) X(PQresultErrorMessage) X(PQresultStatus) X(PQsocket) X(PQstatus)         \
    X(PQtransactionStatus)

typedef struct {
#define PQ_API_MEMBER(name) __typeof__(name) *name;
    PQ_API_FUNCTIONS(PQ_API_MEMBER)
#undef PQ_API_MEMBER
} pq_api_t;

extern pq_api_t pq_api;

/* Loads libpq.so.5 and finds every function above. 0, or -1 with a message in err naming what
 * is missing (the package libpq5, or a libpq too old for a function). */
int pq_api_load(char *err, size_t err_cap);

/* From here on, a call of a libpq function goes through its pointer. */
#define PQclear pq_api.PQclear
#define PQcmdTuples pq_api.PQcmdTuples
#define PQconnectdb pq_api.PQconnectdb
#define PQconnectdbParams pq_api.PQconnectdbParams
#define PQconninfoFree pq_api.PQconninfoFree
#define PQconninfoParse pq_api.PQconninfoParse
#define PQconsumeInput pq_api.PQconsumeInput
#define PQerrorMessage pq_api.PQerrorMessage
#define PQexec pq_api.PQexec
#define PQexecParams pq_api.PQexecParams
#define PQexecPrepared pq_api.PQexecPrepared
#define PQfinish pq_api.PQfinish
#define PQfreemem pq_api.PQfreemem
#define PQgetResult pq_api.PQgetResult
#define PQgetisnull pq_api.PQgetisnull
#define PQgetvalue pq_api.PQgetvalue
#define PQnotifies pq_api.PQnotifies
#define PQntuples pq_api.PQntuples
#define PQprepare pq_api.PQprepare
#define PQputCopyData pq_api.PQputCopyData
#define PQputCopyEnd pq_api.PQputCopyEnd
#define PQresultErrorField pq_api.PQresultErrorField
#define PQresultErrorMessage pq_api.PQresultErrorMessage
#define PQresultStatus pq_api.PQresultStatus
#define PQsocket pq_api.PQsocket
#define PQstatus pq_api.PQstatus
#define PQtransactionStatus pq_api.PQtransactionStatus

#endif
