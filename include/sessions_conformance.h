/*
 * The store conformance kit: what every libsessions store must do, as one
 * suite that anyone points at a store URI -- a built-in store, or one of
 * their own registered with sess_register_scheme. Link -lsessions_conformance
 * -lsessions (CMake: sessions::conformance); it uses only the
 * public API. From Python: sessions.conformance.run(uri).
 *
 *     static const char *const options[] = {"timeout_ms", "300", NULL};
 *     sess_conformance_hooks hooks = {sizeof hooks};   // no server to stop
 *     int failed = sess_conformance_run("etcd://127.0.0.1:2379", options,
 *                                       &hooks, print_line, NULL);
 *
 * Checks (each on stores the kit opens with its own secret, the caller's
 * options, and the options the check needs):
 *   round_trip    every value type and flashes survive requests
 *   expiry        a record past its lifetime is never valid, and is gone
 *                 from the store once its TTL has run out (about 2 s)
 *   regenerate    regenerate_id moves the data; the old ID is gone; while
 *                 50 regenerations run, a reader never finds neither record
 *   destroy       the record is deleted and the cookie expired
 *   oversized     a session over max_data_bytes (and over the server's own
 *                 limit, when the hooks give one) is refused, nothing saved
 *   hash_keys     with hash_keys=true the cycle, regenerate and destroy work
 *   threads       8 threads of request cycles on one store, nothing mixed up
 *   parallel      8 threads on one session: under concurrency=merge every
 *                 thread's keys survive; under cas, retried increments
 *                 reach the exact total
 *   principals    three sessions of one principal, all but one ended: the
 *                 ended ones no longer load, the kept one does (since 0.4)
 * and, when the hooks can stop or pause the store's server:
 *   down_at_open  with the server down, opening fails with
 *                 SESS_E_STORE_UNAVAILABLE, or the first request does
 *   killed        with the server killed, a request is an error (never a new
 *                 empty session) and a save sends no cookie; once it is back
 *                 the session is there again (when persistent)
 *   hung          with the server hung, a request fails within the bound
 *   back          after that, requests work again
 */
#ifndef SESSIONS_CONFORMANCE_H
#define SESSIONS_CONFORMANCE_H

#include <stddef.h>

#include "sessions.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the kit reaches the store's server. Every field after `size` is
 * optional (zero / NULL): the checks that need one are reported skipped. */
typedef struct sess_conformance_hooks {
  size_t size;      /* sizeof(sess_conformance_hooks) */
  void *user;       /* passed to the callbacks */
  int (*stop)(void *user);    /* kill the server (SIGKILL): requests must then fail */
  int (*start)(void *user);   /* start it again (same address), waiting until it answers */
  int (*pause)(void *user);   /* hang it (SIGSTOP): connections open, nothing answers */
  int (*resume)(void *user);  /* SIGCONT */
  int persistent;             /* 1: records survive stop + start */
  size_t server_max_record;   /* the server's own record limit, if under 1 MiB; else 0 */
  unsigned hang_bound_ms;     /* how long a request may wait on a hung server (default 3000) */
} sess_conformance_hooks;

enum { SESS_CHECK_PASSED = 0, SESS_CHECK_FAILED = 1, SESS_CHECK_SKIPPED = 2 };

/* Called once per check, from the calling thread, with its name (above),
 * its outcome and a line saying what was seen (empty when it passed). */
typedef void (*sess_conformance_report)(void *user, const char *check, int outcome,
                                        const char *detail);

/* Runs every check on `uri`. `options` is a NULL-terminated list of
 * alternating names and values set on every config the kit opens (may be
 * NULL). Returns the number of checks that failed (0: the store conforms),
 * or -1 for bad arguments. Takes tens of seconds: the expiry check waits
 * for real time to pass. Since 0.2. */
SESS_API int sess_conformance_run(const char *uri, const char *const *options,
                                  const sess_conformance_hooks *hooks,
                                  sess_conformance_report report, void *report_user);

#ifdef __cplusplus
}
#endif
#endif /* SESSIONS_CONFORMANCE_H */
