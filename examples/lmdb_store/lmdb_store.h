/* A libsessions store on LMDB, written against the public C API only
 * (sessions.h, "Custom stores"): an example of bringing your own store.
 *
 *     lmdb_store_register();   once, at start-up
 *     sess_store_open("lmdb:///var/lib/app/sessions?map_size_mb=256", config, &store);
 *
 * Records live in one LMDB environment (a directory, created 0700 when
 * missing) as expires_at (8 bytes, big-endian Unix seconds) followed by the
 * session's bytes. Expired records are never returned, and are deleted as
 * they are met and by a sweep every 1,000 saves. regenerate_id is one write
 * transaction. LMDB serialises writers and lets readers run alongside. */
#ifndef LMDB_STORE_H
#define LMDB_STORE_H

#include <sessions.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Registers the "lmdb" scheme. Options: map_size_mb (1..1048576, default
 * 64), the largest the database may grow. Returns a SESS_* code. */
int lmdb_store_register(void);

#ifdef __cplusplus
}
#endif
#endif
