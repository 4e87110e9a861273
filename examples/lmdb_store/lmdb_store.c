#include "lmdb_store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <lmdb.h>

#define SWEEP_EVERY 1000 /* saves between two sweeps of expired records */

typedef struct lmdb_state {
  char *path;
  size_t map_size;
  MDB_env *env;
  MDB_dbi dbi;
  unsigned long saves; /* approximate: a race only moves a sweep */
} lmdb_state;

/* Says why, for sess_last_error(), and returns the code. */
static int fail_with(int code, const char *what, int mdb_rc) {
  char message[256];
  snprintf(message, sizeof message, "lmdb: %s: %s", what, mdb_strerror(mdb_rc));
  sess_backend_set_error(message);
  return code;
}

static void put_be64(unsigned char *p, int64_t v) {
  for (int i = 7; i >= 0; --i, v = (int64_t)((uint64_t)v >> 8)) p[i] = (unsigned char)(v & 0xff);
}

static int64_t get_be64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return (int64_t)v;
}

/* A record's version for save_if: FNV-1a of its bytes. A hash of the
 * content is enough here because every check and write happens inside one
 * LMDB write transaction: equal bytes mean nothing changed that matters. */
static uint64_t version_of(const void *data, size_t len) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < len; ++i) h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ull;
  return h;
}

static MDB_val key_of(const char *key) {
  MDB_val k = {strlen(key), (void *)key};
  return k;
}

/* Deletes the expired records, in one write transaction. */
static int sweep(lmdb_state *st, int64_t now) {
  MDB_txn *txn;
  MDB_cursor *cursor;
  MDB_val k, v;
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc) return rc;
  rc = mdb_cursor_open(txn, st->dbi, &cursor);
  if (rc) {
    mdb_txn_abort(txn);
    return rc;
  }
  while ((rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) == 0)
    if (v.mv_size < 8 || get_be64(v.mv_data) <= now) mdb_cursor_del(cursor, 0);
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return rc;
  }
  return mdb_txn_commit(txn);
}

static int lmdb_load(void *state, const char *key, int64_t now, sess_sink *sink) {
  lmdb_state *st = state;
  MDB_txn *txn;
  MDB_val k = key_of(key), v;
  int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (rc) return fail_with(SESS_E_STORE_UNAVAILABLE, "read transaction", rc);
  rc = mdb_get(txn, st->dbi, &k, &v);
  int result = SESS_NOT_FOUND;
  if (rc == 0 && v.mv_size >= 8 && get_be64(v.mv_data) > now) {
    /* A record too big for the store's max_data_bytes is refused by the
     * library as foreign: nothing to do here but pass it on. */
    sess_sink_set_version(sink, version_of((const char *)v.mv_data + 8, v.mv_size - 8));
    sess_sink_write(sink, (const char *)v.mv_data + 8, v.mv_size - 8);
    result = SESS_OK;
  } else if (rc != 0 && rc != MDB_NOTFOUND) {
    result = fail_with(SESS_E_STORE_UNAVAILABLE, "get", rc);
  }
  mdb_txn_abort(txn);
  return result;
}

/* Writes one record into an open write transaction. */
static int put_record(lmdb_state *st, MDB_txn *txn, const char *key, const void *data,
                      size_t len, int64_t now, int64_t ttl) {
  MDB_val k = key_of(key), v = {len + 8, NULL};
  int rc = mdb_put(txn, st->dbi, &k, &v, MDB_RESERVE);  /* written in place, no copy */
  if (rc) return rc;
  put_be64(v.mv_data, now + ttl);
  memcpy((unsigned char *)v.mv_data + 8, data, len);
  return 0;
}

static int commit_or_fail(MDB_txn *txn, int rc, const char *what) {
  if (rc) {
    mdb_txn_abort(txn);
    return fail_with(rc == MDB_MAP_FULL ? SESS_E_VALUE_TOO_LARGE : SESS_E_STORE_UNAVAILABLE,
                     what, rc);
  }
  rc = mdb_txn_commit(txn);
  if (rc)
    return fail_with(rc == MDB_MAP_FULL ? SESS_E_VALUE_TOO_LARGE : SESS_E_STORE_UNAVAILABLE,
                     "commit", rc);
  return SESS_OK;
}

static int lmdb_save(void *state, const char *key, const void *data, size_t len, int64_t now,
                     int64_t ttl) {
  lmdb_state *st = state;
  MDB_txn *txn;
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc) return fail_with(SESS_E_STORE_UNAVAILABLE, "write transaction", rc);
  int result = commit_or_fail(txn, put_record(st, txn, key, data, len, now, ttl), "put");
  if (result == SESS_OK && ++st->saves % SWEEP_EVERY == 0) sweep(st, now);
  return result;
}

static int lmdb_erase(void *state, const char *key) {
  lmdb_state *st = state;
  MDB_txn *txn;
  MDB_val k = key_of(key);
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc) return fail_with(SESS_E_STORE_UNAVAILABLE, "write transaction", rc);
  rc = mdb_del(txn, st->dbi, &k, NULL);
  return commit_or_fail(txn, rc == MDB_NOTFOUND ? 0 : rc, "del");
}

/* regenerate_id: both in one transaction, so no reader sees neither. */
static int lmdb_move(void *state, const char *from, const char *to, const void *data, size_t len,
                     int64_t now, int64_t ttl) {
  lmdb_state *st = state;
  MDB_txn *txn;
  MDB_val k = key_of(from);
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc) return fail_with(SESS_E_STORE_UNAVAILABLE, "write transaction", rc);
  rc = put_record(st, txn, to, data, len, now, ttl);
  if (rc == 0) {
    rc = mdb_del(txn, st->dbi, &k, NULL);
    if (rc == MDB_NOTFOUND) rc = 0;
  }
  return commit_or_fail(txn, rc, "move");
}

/* concurrency=merge and cas: the check and the write in one write
 * transaction, which LMDB serializes across threads and processes. */
static int lmdb_save_if(void *state, const char *from, const char *to, const void *data,
                        size_t len, int64_t now, int64_t ttl, uint64_t expected) {
  lmdb_state *st = state;
  MDB_txn *txn;
  MDB_val k = key_of(from), v;
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc) return fail_with(SESS_E_STORE_UNAVAILABLE, "write transaction", rc);
  rc = mdb_get(txn, st->dbi, &k, &v);
  if (rc == MDB_NOTFOUND || (rc == 0 && (v.mv_size < 8 || get_be64(v.mv_data) <= now))) {
    mdb_txn_abort(txn);
    return SESS_NOT_FOUND;
  }
  if (rc == 0 && version_of((const char *)v.mv_data + 8, v.mv_size - 8) != expected) {
    mdb_txn_abort(txn);
    return SESS_E_CONFLICT;
  }
  if (rc == 0) rc = put_record(st, txn, to, data, len, now, ttl);
  if (rc == 0 && strcmp(from, to) != 0) rc = mdb_del(txn, st->dbi, &k, NULL);
  return commit_or_fail(txn, rc, "save_if");
}

/* Opens the environment: at sess_store_open, never at sess_store_check. */
static int lmdb_start(void *state) {
  lmdb_state *st = state;
  MDB_txn *txn;
  if (mkdir(st->path, 0700) != 0 && errno != EEXIST)
    return fail_with(SESS_E_STORE_UNAVAILABLE, st->path, errno == EACCES ? EACCES : EIO);
  int rc = mdb_env_create(&st->env);
  if (!rc) rc = mdb_env_set_mapsize(st->env, st->map_size);
  /* NOTLS: the library's threads may take turns on one read transaction slot. */
  if (!rc) rc = mdb_env_open(st->env, st->path, MDB_NOTLS, 0600);
  if (!rc) rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (!rc) {
    rc = mdb_dbi_open(txn, NULL, 0, &st->dbi);
    if (rc) mdb_txn_abort(txn);
    else rc = mdb_txn_commit(txn);
  }
  return rc ? fail_with(SESS_E_STORE_UNAVAILABLE, st->path, rc) : SESS_OK;
}

static void lmdb_close(void *state) {
  lmdb_state *st = state;
  if (st->env) mdb_env_close(st->env);
  free(st->path);
  free(st);
}

static const sess_backend_ops lmdb_ops = {sizeof(sess_backend_ops), lmdb_load, lmdb_save,
                                          lmdb_erase, lmdb_move, lmdb_start, lmdb_close,
                                          lmdb_save_if};

/* lmdb:///absolute/dir[?map_size_mb=N]: checks the URI and options only. */
static int lmdb_factory(void *factory_state, const char *uri, const char *const *names,
                        const char *const *values, size_t count, const sess_backend_ops **ops,
                        void **out) {
  (void)factory_state;
  const char *prefix = "lmdb://";
  if (strncasecmp(uri, prefix, strlen(prefix)) != 0 || uri[strlen(prefix)] != '/') {
    sess_backend_set_error("expected lmdb:///absolute/directory");
    return SESS_E_BAD_URI;
  }
  const char *path = uri + strlen(prefix);
  size_t path_len = strcspn(path, "?#");
  if (memchr(path, '%', path_len)) {
    sess_backend_set_error("percent-escapes are not supported in lmdb: paths");
    return SESS_E_BAD_URI;
  }
  unsigned long long map_size_mb = 64;
  for (size_t i = 0; i < count; ++i) {
    char *end = NULL;
    if (strcmp(names[i], "map_size_mb") != 0) {
      char message[128];
      snprintf(message, sizeof message, "unknown option %s (lmdb: takes map_size_mb)", names[i]);
      sess_backend_set_error(message);
      return SESS_E_BAD_OPTION;
    }
    errno = 0;
    map_size_mb = strtoull(values[i], &end, 10);
    if (errno || !*values[i] || *end || map_size_mb < 1 || map_size_mb > 1048576) {
      sess_backend_set_error("map_size_mb must be an integer from 1 to 1048576");
      return SESS_E_BAD_OPTION;
    }
  }
  lmdb_state *st = calloc(1, sizeof *st);
  if (!st || !(st->path = strndup(path, path_len))) {
    free(st);
    return SESS_E_NO_MEMORY;
  }
  st->map_size = (size_t)map_size_mb << 20;
  *ops = &lmdb_ops;
  *out = st;
  return SESS_OK;
}

int lmdb_store_register(void) {
  static const char *const options[] = {"map_size_mb", NULL};
  return sess_register_scheme("lmdb", lmdb_factory, NULL, options);
}
