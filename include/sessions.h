/*
 * libsessions: HTTP sessions for C, C++ and anything that speaks the C ABI.
 *
 * Conventions (they hold for every function below):
 *
 *  1. Handles are opaque pointers. A store (sess_store) is opened once and is
 *     thread-safe. A config (sess_config), a request (sess_request) and the
 *     sessions it hands out (sess_session) belong to one thread at a time.
 *  2. Functions that can fail return an int: SESS_OK (0) on success, else one
 *     of the SESS_E_* codes. Codes are small stable integers; new ones may be
 *     added, existing ones never change meaning. SESS_NOT_FOUND (a key that is
 *     absent) is a result, not an error.
 *  3. sess_strerror(code) gives static text for a code. sess_last_error() gives
 *     the detail of the most recent failure on the calling thread; the string
 *     is owned by the library and valid until the next failure on that thread.
 *  4. Inputs are copied: the library keeps no pointer you pass in. Binary
 *     inputs are (pointer, length); names and option strings are NUL-terminated
 *     UTF-8.
 *  5. Outputs: a returned `char *` belongs to the caller and is released with
 *     sess_free(). A returned `const char *` is borrowed: it stays valid until
 *     the next call that modifies the handle it came from, or until that handle
 *     is freed, whichever comes first. Borrowed strings are NUL-terminated and
 *     their length is also returned where the content may hold NUL bytes.
 *     Pointer out-parameters (and their lengths) are set to NULL (and 0) on
 *     every failure and on SESS_NOT_FOUND, argument checks included; scalar
 *     out-parameters are then left as they were.
 *  6. Every *_free / *_close function accepts NULL and then does nothing.
 *  7. No C++ exception ever crosses this interface. Memory exhaustion is
 *     reported as SESS_E_NO_MEMORY.
 *  8. Check at run time that the library is the one you compiled against:
 *     sess_version_number() / SESS_VERSION_MAJOR must agree on the major.
 *
 * The request cycle:
 *
 *     sess_store_open("memory:", config, &store);             // once
 *     sess_request_begin(cookie_header, cookie_len, &req);    // per request
 *     sess_request_session(req, store, "mysession", &s);      // by cookie name
 *     sess_get_int(s, "user_id", &uid);
 *     sess_set_str(s, "username", "ann", 3);
 *     sess_request_finish(req);                               // saves changes
 *     for (i = 0; i < sess_request_set_cookie_count(req); i++)
 *         emit("Set-Cookie", sess_request_set_cookie(req, i, &len));
 *     sess_request_free(req);
 */
#ifndef SESSIONS_H
#define SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#define SESS_VERSION_MAJOR 0
#define SESS_VERSION_MINOR 4
#define SESS_VERSION_RELEASE 0
#define SESS_VERSION_NUMBER \
  (SESS_VERSION_MAJOR * 10000 + SESS_VERSION_MINOR * 100 + SESS_VERSION_RELEASE)
#define SESS_VERSION_STRING "0.4.0"

#if defined(_WIN32)
#define SESS_API
#elif defined(__GNUC__)
#define SESS_API __attribute__((visibility("default")))
#else
#define SESS_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Result codes (convention 2) ------------------------------------- */
enum {
  SESS_OK = 0,
  SESS_NOT_FOUND = 1,            /* the key is absent (a result, not an error) */
  SESS_E_INVALID_ARGUMENT = 2,   /* NULL handle, bad key, invalid UTF-8, ... */
  SESS_E_TYPE_MISMATCH = 3,      /* the value exists with another type */
  SESS_E_NO_MEMORY = 4,
  SESS_E_BAD_URI = 5,            /* store URI unparsable or unknown scheme */
  SESS_E_BAD_OPTION = 6,         /* unknown option, bad value, unsafe attribute */
  SESS_E_BAD_SECRET = 7,         /* no secret, shorter than 32 bytes, duplicate */
  SESS_E_UNSUPPORTED = 8,        /* known store scheme not built into this library */
  SESS_E_STORE_UNAVAILABLE = 9,  /* the store could not be reached: nothing was saved */
  SESS_E_COOKIE_TOO_LARGE = 10,  /* Set-Cookie would exceed 4096 bytes: nothing was saved */
  SESS_E_VALUE_TOO_LARGE = 11,   /* over max_data_bytes or the server's limit: nothing saved */
  SESS_E_BAD_JSON = 12,          /* JSON text that does not parse or nests too deep */
  SESS_E_HEADER_TOO_LARGE = 13,  /* Cookie: header over SESS_MAX_COOKIE_HEADER bytes */
  SESS_E_STATE = 14,             /* call out of order (e.g. after sess_request_finish) */
  SESS_E_INTERNAL = 15,          /* a bug: please report it */
  SESS_E_CONFLICT = 16,          /* concurrency=cas: the record changed since it was loaded
                                    (or merge gave up): nothing was saved; retry the request */
  SESS_E_CSRF = 17               /* the CSRF token is missing, malformed or not this
                                    session's (sess_csrf_verify); answer 403 */
};

/* Why a session is what it is after loading (sess_session_status). Every
 * status but VALID means the session is new and empty. */
enum {
  SESS_STATUS_NEW = 0,         /* the request carried no such cookie */
  SESS_STATUS_VALID = 1,       /* the cookie decoded and the session was loaded */
  SESS_STATUS_EXPIRED = 2,     /* max age, idle timeout or absolute timeout passed */
  SESS_STATUS_TAMPERED = 3,    /* authentication failed: modified or forged */
  SESS_STATUS_UNKNOWN_KEY = 4, /* sealed with a secret this store no longer has */
  SESS_STATUS_MALFORMED = 5,   /* not a cookie this library wrote */
  SESS_STATUS_UNKNOWN_ID = 6,  /* authentic ID with no record in the store */
  SESS_STATUS_REVOKED = 7      /* its principal's sessions were ended after it logged in
                                  (sess_store_end_sessions, stores that revoke by stamps) */
};

/* Value types (sess_get_type). The MessagePack data model. */
enum {
  SESS_TYPE_NIL = 0,
  SESS_TYPE_BOOL = 1,
  SESS_TYPE_INT = 2,
  SESS_TYPE_DOUBLE = 3,
  SESS_TYPE_STRING = 4,
  SESS_TYPE_BYTES = 5,
  SESS_TYPE_ARRAY = 6,
  SESS_TYPE_MAP = 7
};

/* Limits that are part of the contract. */
#define SESS_MAX_COOKIE_HEADER 65536 /* longer Cookie: headers are refused */
#define SESS_MAX_SET_COOKIE 4096     /* longest Set-Cookie value emitted */
#define SESS_MIN_SECRET 32           /* shortest secret accepted, in bytes */

typedef struct sess_config sess_config;
typedef struct sess_store sess_store;
typedef struct sess_request sess_request;
typedef struct sess_session sess_session;

/* ---- Library ---------------------------------------------------------- */
SESS_API unsigned sess_version_number(void);     /* SESS_VERSION_NUMBER of the library */
SESS_API const char *sess_version_string(void);  /* static */
SESS_API const char *sess_strerror(int code);    /* static; "unknown error" for others */
SESS_API const char *sess_last_error(void);      /* thread-local; "" if none yet */
SESS_API const char *sess_status_name(int status); /* "valid", "expired", ...; static */
SESS_API void sess_free(void *ptr);              /* frees any `char *` we returned */

/* ---- Configuration (a builder; read once by sess_store_open) ---------- */
SESS_API int sess_config_new(sess_config **out);
SESS_API void sess_config_free(sess_config *config);
/* Adds a secret (>= 32 bytes, binary allowed). The first one added seals new
 * cookies; every one added opens them, so rotating is: add the new secret
 * first, keep the old ones after it until their cookies have expired. */
SESS_API int sess_config_add_secret(sess_config *config, const void *secret, size_t len);
/* Sets a named option (see docs/api.md#options): cookie attributes (path,
 * domain, max_age, secure, http_only, same_site, partitioned), lifetimes
 * (idle_timeout, absolute_timeout), codec ("aes-gcm" or "hmac-sha256") and the
 * store's own options (max_sessions, shards, max_data_bytes). Values are
 * validated here or, for store options, at sess_store_open. */
SESS_API int sess_config_set(sess_config *config, const char *name, const char *value);

/* ---- Stores ----------------------------------------------------------- */
/* Opens a store by URI ("cookie:", "memory:?max_sessions=100000",
 * "redis://127.0.0.1:6379/0", "memcached://h1,h2", "file:///dir"; see
 * docs/stores.md). Query parameters are options, as with sess_config_set;
 * options set on the config override them. `config` may be freed right
 * after. Server-side stores dial their server here: SESS_E_STORE_UNAVAILABLE
 * when it is down. The store is thread-safe; open it after fork(), never
 * before. */
SESS_API int sess_store_open(const char *uri, const sess_config *config, sess_store **out);
/* Validates `uri`, its options and the config (secrets included) exactly as
 * sess_store_open would, but dials no server, touches no file and starts no
 * thread: for checking a configuration in a process that will not use the
 * store, such as nginx's master before it forks its workers. Since 0.1. */
SESS_API int sess_store_check(const char *uri, const sess_config *config);
/* sess_store_check, and the session cookie `name` checked against the
 * store's cookie options as sess_request_session would check it: a cookie
 * token, and the __Host- / __Secure- prefix rules (SESS_E_BAD_OPTION, saying
 * which attribute to set). For refusing a configuration before serving,
 * like nginx -t. Since 0.4. */
SESS_API int sess_store_check_name(const char *uri, const sess_config *config, const char *name);
/* Releases the caller's reference; requests still using the store keep it
 * alive until they are freed. */
SESS_API void sess_store_close(sess_store *store);
/* Whether the store holds a live record for session `id` (43 base64url
 * characters, as sess_session_id gives it): SESS_OK, SESS_NOT_FOUND (also
 * for text that is not an ID), SESS_E_STORE_UNAVAILABLE, or
 * SESS_E_UNSUPPORTED for cookie:, which keeps none. Reads the record without
 * opening it: for admin tools, and for the store conformance kit. Since 0.2. */
SESS_API int sess_store_session_exists(sess_store *store, const char *id);

/* ---- Requests --------------------------------------------------------- */
/* Parses a raw Cookie: header value (may be NULL with len 0). The header is
 * copied. Fails with SESS_E_HEADER_TOO_LARGE over SESS_MAX_COOKIE_HEADER. */
SESS_API int sess_request_begin(const char *cookie_header, size_t len, sess_request **out);
/* Loads (once per name) the session stored under cookie `name` in `store`.
 * The session belongs to the request and lives until sess_request_free. A
 * cookie that does not decode gives a new empty session with a status that
 * says why; an unreachable store is SESS_E_STORE_UNAVAILABLE and no session. */
SESS_API int sess_request_session(sess_request *req, sess_store *store, const char *name,
                                  sess_session **out);
/* Saves every session that changed (or must be refreshed), deletes destroyed
 * ones, and prepares the Set-Cookie values. On an error the other sessions are
 * still saved; the failed one emits no Set-Cookie, so the browser keeps its
 * old cookie. Later calls on the request's sessions return SESS_E_STATE. */
SESS_API int sess_request_finish(sess_request *req);
SESS_API size_t sess_request_set_cookie_count(const sess_request *req);
/* The value of the i-th Set-Cookie header (without "Set-Cookie: "); borrowed
 * until sess_request_free. NULL if i is out of range. */
SESS_API const char *sess_request_set_cookie(const sess_request *req, size_t i, size_t *len);
SESS_API void sess_request_free(sess_request *req);

/* ---- Session metadata ------------------------------------------------- */
SESS_API const char *sess_session_name(const sess_session *s);   /* borrowed */
/* The session ID as 43 base64url characters; "" for the cookie store and for
 * a new session before sess_request_finish. Borrowed. */
SESS_API const char *sess_session_id(const sess_session *s);
SESS_API int sess_session_status(const sess_session *s);          /* SESS_STATUS_* */
SESS_API int sess_session_is_new(const sess_session *s);          /* 1 or 0 */
SESS_API int sess_session_is_modified(const sess_session *s);     /* 1 or 0 */
SESS_API int64_t sess_session_created(const sess_session *s);     /* Unix seconds */
SESS_API int64_t sess_session_last_seen(const sess_session *s);   /* Unix seconds, previous visit */
/* New ID, same data; the old record is deleted at sess_request_finish. Use it
 * at login and at any privilege change. */
SESS_API int sess_session_regenerate_id(sess_session *s);
/* Asks sess_request_finish to renew a valid session's expiry (its last-seen
 * time, the record's TTL and the cookie) with its values unchanged, for
 * rolling sessions and for proxies that only read. A renewal is written once
 * a tenth of the session's lifetime (idle_timeout, else max_age) has passed
 * since the last save, and at least once a minute; other calls write
 * nothing. A no-op on a session that is not valid. Since 0.1. */
SESS_API int sess_session_touch(sess_session *s);
/* Empties the session, deletes its record and expires the cookie at finish.
 * Values set and flashes added after it go into a fresh session instead (a
 * new ID and a new cookie replace the old ones at finish): the "you have
 * been logged out" flash. */
SESS_API int sess_session_destroy(sess_session *s);
/* Overrides one cookie option for this session (path, domain, max_age,
 * secure, http_only, same_site, partitioned). max_age is remembered by the
 * session (e.g. "remember me"); a negative max_age destroys the session. */
SESS_API int sess_session_set_option(sess_session *s, const char *name, const char *value);

/* ---- Principals: listing sessions, logging out everywhere (since 0.4) --
 *
 * A principal names whom a session belongs to ("user:42"): 1 to 255 bytes
 * of UTF-8 of your choosing. Set it at login, together with
 * sess_session_regenerate_id; the store can then list the principal's
 * sessions and end them ("log out my other devices", "an admin ends a
 * compromised account's sessions"). Stores with an index (memory:, redis:,
 * file:, sqlite:, postgresql:, mongodb:) delete the records; cookie: (with
 * the option revocation=URI), memcached: and custom stores write a stamp
 * instead that refuses, as SESS_STATUS_REVOKED, every session of the
 * principal that logged in before it, within revocation_cache seconds in
 * other processes. docs/api.md#principals. */
/* Ties the session to `principal` (NULL or "" unties it), authenticated now. */
SESS_API int sess_session_set_principal(sess_session *s, const char *principal);
SESS_API const char *sess_session_principal(const sess_session *s); /* "" if none; borrowed */
/* Application metadata listed with the session (a user agent, an address, a
 * label): up to 16 entries, keys 1 to 64 bytes, values at most 1024 bytes of
 * UTF-8. A NULL value removes the entry. */
SESS_API int sess_session_set_metadata(sess_session *s, const char *key, const char *value);
/* Borrowed; SESS_NOT_FOUND when absent. */
SESS_API int sess_session_metadata(const sess_session *s, const char *key, const char **value);
/* The non-secret handle that sess_store_list_sessions shows for this
 * session (22 base64url characters), to mark "this device" and to end one
 * session; "" for cookie: and for a new session before it has an ID.
 * Borrowed until the next sess_session_handle call on this thread. */
SESS_API const char *sess_session_handle(const sess_session *s);

typedef struct sess_session_list sess_session_list;
typedef struct sess_session_info {
  const char *handle;        /* as sess_session_handle */
  int64_t created;           /* Unix seconds */
  int64_t last_seen;         /* Unix seconds, last save */
  const char *metadata_json; /* a JSON object of strings, "{}" when none */
} sess_session_info;
/* The live sessions of `principal`, most recently seen first. Strings in the
 * list are borrowed until sess_session_list_free. SESS_E_UNSUPPORTED for
 * stores that revoke by stamps (they keep no index). */
SESS_API int sess_store_list_sessions(sess_store *store, const char *principal,
                                      sess_session_list **out);
SESS_API size_t sess_session_list_count(const sess_session_list *list);
SESS_API int sess_session_list_get(const sess_session_list *list, size_t i,
                                   sess_session_info *out); /* SESS_NOT_FOUND past the end */
SESS_API void sess_session_list_free(sess_session_list *list);
/* Ends every session of `principal` except `keep` (NULL: all of them;
 * typically the current request's session: "log out my other devices").
 * *ended (may be NULL) is how many were ended, or -1 for stores that revoke
 * by stamps, which cannot count. SESS_E_UNSUPPORTED for cookie: without a
 * revocation store. */
SESS_API int sess_store_end_sessions(sess_store *store, const char *principal, sess_session *keep,
                                     int64_t *ended);
/* Ends the one session of `principal` shown under `handle`: SESS_OK, or
 * SESS_NOT_FOUND. SESS_E_UNSUPPORTED for stores that revoke by stamps. */
SESS_API int sess_store_end_session(sess_store *store, const char *principal, const char *handle);

/* ---- CSRF tokens (since 0.4) -------------------------------------------
 * A token for forms and for an X-CSRF-Token header, derived from a secret
 * kept in the session and masked with fresh randomness on every call, so
 * that it never repeats in a page (BREACH). Every token of the session
 * verifies until sess_session_regenerate_id or sess_session_destroy, which
 * replace the secret. The first call creates the secret: the session is then
 * saved at finish. docs/api.md#csrf. */
/* 86 base64url characters, borrowed until the next sess_csrf_token call on
 * this thread. */
SESS_API int sess_csrf_token(sess_session *s, const char **token, size_t *len);
/* SESS_OK when `token` is one of this session's, else SESS_E_CSRF (a NULL
 * or empty token, any length, any byte changed, another session's or one
 * from before a regenerate); compared in constant time. */
SESS_API int sess_csrf_verify(const sess_session *s, const char *token, size_t len);

/* ---- Values ----------------------------------------------------------- */
/* Keys are NUL-terminated UTF-8, 1 to 255 bytes. Getters return
 * SESS_NOT_FOUND when the key is absent and SESS_E_TYPE_MISMATCH when it holds
 * another type; they never convert. Borrowed outputs (convention 5) stay valid
 * until the next modifying call on the session. */
SESS_API int sess_get_type(const sess_session *s, const char *key, int *type);
/* A value of any scalar type in one call. `type` is always set; the field
 * of that type is filled: boolean (bool), integer (int), real (double), data
 * and len (string or bytes, borrowed as above). Arrays and maps fill only
 * `type`: read them with sess_get_msgpack or sess_get_json. */
typedef struct sess_value {
  int type; /* SESS_TYPE_* */
  int boolean;
  int64_t integer;
  double real;
  const char *data;
  size_t len;
} sess_value;
SESS_API int sess_get(const sess_session *s, const char *key, sess_value *out);
SESS_API int sess_get_bool(const sess_session *s, const char *key, int *out);
SESS_API int sess_get_int(const sess_session *s, const char *key, int64_t *out);
SESS_API int sess_get_double(const sess_session *s, const char *key, double *out);
SESS_API int sess_get_str(const sess_session *s, const char *key, const char **out, size_t *len);
SESS_API int sess_get_bytes(const sess_session *s, const char *key, const void **out,
                            size_t *len);
/* Any value as JSON text (bytes become base64 strings); caller frees. */
SESS_API int sess_get_json(const sess_session *s, const char *key, char **out, size_t *len);

SESS_API int sess_set_nil(sess_session *s, const char *key);
SESS_API int sess_set_bool(sess_session *s, const char *key, int value);
SESS_API int sess_set_int(sess_session *s, const char *key, int64_t value);
SESS_API int sess_set_double(sess_session *s, const char *key, double value); /* finite */
SESS_API int sess_set_str(sess_session *s, const char *key, const char *value, size_t len);
SESS_API int sess_set_bytes(sess_session *s, const char *key, const void *value, size_t len);
/* Parses JSON text (objects become maps, arrays arrays, ...). The text is all
 * of (json, len): a NUL byte or anything after the value is SESS_E_BAD_JSON,
 * as are an integer outside int64, a number past the double range, and more
 * than 24 nested arrays/objects (the outermost counts as 1). */
SESS_API int sess_set_json(sess_session *s, const char *key, const char *json, size_t len);
/* Any value as one MessagePack document, exact for every type (bytes inside
 * arrays and maps too: bin); caller frees with sess_free. Since 0.1. */
SESS_API int sess_get_msgpack(const sess_session *s, const char *key, char **out, size_t *len);
/* Sets a value from one MessagePack document filling all of (data, len):
 * nil, bool, int up to int64, finite float, UTF-8 str, bin, array, map with
 * str keys (a repeated key: the last wins), at most 24 nested containers.
 * Declared lengths and counts are checked against the bytes given before
 * anything is allocated. Anything else is SESS_E_INVALID_ARGUMENT. */
SESS_API int sess_set_msgpack(sess_session *s, const char *key, const void *data, size_t len);

SESS_API int sess_delete(sess_session *s, const char *key); /* SESS_OK even if absent */
SESS_API int sess_clear(sess_session *s);                   /* removes all values */
SESS_API size_t sess_count(const sess_session *s);
/* The i-th key in byte order; borrowed. SESS_NOT_FOUND if i >= sess_count. */
SESS_API int sess_key_at(const sess_session *s, size_t i, const char **key, size_t *len);

/* ---- Flashes (gorilla semantics): kept until read once --------------- */
/* `kind` NULL means "_flash". */
SESS_API int sess_add_flash_str(sess_session *s, const char *kind, const char *value,
                                size_t len);
SESS_API int sess_add_flash_json(sess_session *s, const char *kind, const char *json,
                                 size_t len);
/* Returns the flashes of `kind` as a JSON array ("[]" when none) and removes
 * them; caller frees. */
SESS_API int sess_flashes_json(sess_session *s, const char *kind, char **out, size_t *len);

/* ---- Custom stores: bring your own backend (since 0.2) --------------
 *
 * A backend keeps a store's session records: opaque bytes under short keys,
 * each with a time to live. It is a table of callbacks plus a state pointer
 * of yours, either opened directly (sess_store_open_backend) or made by a
 * factory registered under a URI scheme (sess_register_scheme), so that
 * sess_store_open("etcd://...") works like the built-in stores, which are
 * registered the same way. docs/stores.md#write-your-own-store has complete
 * examples in C, C++ and Python.
 *
 * What the library guarantees to a backend:
 *  - keys are NUL-terminated, 1 to 64 bytes of base64url (A-Z a-z 0-9 - _):
 *    the session ID, or its SHA-256 with hash_keys=true (43 characters), or
 *    a principal's revocation stamp (50 characters, "revoked..."; since 0.4);
 *  - data is opaque bytes, at most the store's max_data_bytes: keep them as
 *    they are; ttl is in seconds (>= 1) from `now` (Unix seconds, the
 *    store's clock, which a backend should use for expiry);
 *  - pointers passed to a callback are valid only during the call;
 *  - calls for one request never overlap, but calls for different requests
 *    arrive at once from any threads: every callback must be thread-safe;
 *  - close(state), when given, is called exactly once, after the last call:
 *    when the store's last reference goes, or when opening fails. From the
 *    moment it is passed in, the library owns `state`.
 *
 * What a backend must guarantee:
 *  - load writes the live record into `sink` (sess_sink_write, once or in
 *    pieces) and returns SESS_OK, or returns SESS_NOT_FOUND when there is
 *    none or it has expired (now >= the save's now + ttl);
 *  - a failure is SESS_E_STORE_UNAVAILABLE, never SESS_NOT_FOUND: a record
 *    reported absent would be replaced by a new empty session;
 *  - save replaces the whole record atomically (readers see the old bytes or
 *    the new, never a mix), or returns SESS_E_VALUE_TOO_LARGE having saved
 *    nothing; erase of an absent key is SESS_OK;
 *  - move (optional) saves `to` and erases `from` so that no reader ever
 *    sees neither; without it the library saves, then erases;
 *  - save_if (optional, since 0.3) makes concurrency=merge and cas atomic:
 *    load then also calls sess_sink_set_version with the record's version
 *    (any 64-bit value that changes whenever the record is written), and
 *    save_if writes `data` under `to`, erasing `from` when it differs, only
 *    if the record under `from` is still at version `expected`, all at once.
 *    It returns SESS_OK (written), SESS_E_CONFLICT (the record changed:
 *    nothing written) or SESS_NOT_FOUND (it is gone: nothing written).
 *    Without save_if the library reads the record again and compares its
 *    bytes before it saves: one process's requests take turns there, so that
 *    is safe within a process, but not against other processes sharing the
 *    backend (docs/stores.md#concurrent-requests-on-one-session).
 * Callbacks return SESS_OK, SESS_NOT_FOUND, SESS_E_STORE_UNAVAILABLE or
 * SESS_E_VALUE_TOO_LARGE (and save_if SESS_E_CONFLICT); any other value is taken as
 * SESS_E_STORE_UNAVAILABLE. Before returning an error a callback may call
 * sess_backend_set_error to say why; the caller then reads it, after the
 * callback's name, in sess_last_error(). */
typedef struct sess_sink sess_sink;
/* Appends a loaded record's bytes; SESS_E_VALUE_TOO_LARGE past the store's
 * max_data_bytes (the load is then refused as a foreign record). */
SESS_API int sess_sink_write(sess_sink *sink, const void *data, size_t len);
/* The version of the record being loaded, for backends with save_if. */
SESS_API void sess_sink_set_version(sess_sink *sink, uint64_t version);
/* The reason for the error the calling callback is about to return; copied.
 * Only meaningful inside a callback. */
SESS_API void sess_backend_set_error(const char *message);

typedef struct sess_backend_ops {
  size_t size; /* sizeof(sess_backend_ops) as you compiled it: the table grows at its end */
  int (*load)(void *state, const char *key, int64_t now, sess_sink *sink);
  int (*save)(void *state, const char *key, const void *data, size_t len, int64_t now,
              int64_t ttl);
  int (*erase)(void *state, const char *key);
  /* Optional: an atomic regenerate_id. */
  int (*move)(void *state, const char *from, const char *to, const void *data, size_t len,
              int64_t now, int64_t ttl);
  /* Optional: called by sess_store_open (never by sess_store_check) before any
   * other call: dial servers, open files here, not in the factory. */
  int (*start)(void *state);
  /* Optional: releases `state`. */
  void (*close)(void *state);
  /* Optional (since 0.3): an atomic conditional save, see above. */
  int (*save_if)(void *state, const char *from, const char *to, const void *data, size_t len,
                 int64_t now, int64_t ttl, uint64_t expected);
} sess_backend_ops;

/* Opens a store on one backend instance. The table is copied (the first
 * ops->size bytes); load, save and erase are required. `config` takes the
 * general options (secrets, cookie attributes, lifetimes, codec, hash_keys,
 * max_data_bytes). On any failure *out is NULL and close(state) has been
 * called. */
SESS_API int sess_store_open_backend(const sess_backend_ops *ops, void *state,
                                     const sess_config *config, sess_store **out);

/* Makes a backend for a store URI. `uri` is the whole URI as given;
 * names/values are the `count` options of its query and of the config that
 * the library did not take as general options, in order (the config's
 * last). Returns SESS_OK with *ops and *state set (the table is copied; the
 * library owns state), or SESS_E_BAD_URI / SESS_E_BAD_OPTION (with
 * sess_backend_set_error saying why) to refuse them. Must not dial: it also
 * runs for sess_store_check. */
typedef int (*sess_backend_factory)(void *factory_state, const char *uri,
                                    const char *const *names, const char *const *values,
                                    size_t count, const sess_backend_ops **ops, void **state);
/* Registers `scheme` (letters, digits, '+', '-', '.'; case-insensitive) so
 * that sess_store_open and sess_store_check build its stores with `factory`.
 * `options` is a NULL-terminated list of the option names its factory
 * takes, which sess_config_set then accepts (NULL: none). Register at
 * start-up, before configs use the options; thread-safe. Errors:
 * SESS_E_INVALID_ARGUMENT for a bad or already registered scheme (built-in
 * ones included). `factory_state` is the caller's and must outlive its use. */
SESS_API int sess_register_scheme(const char *scheme, sess_backend_factory factory,
                                  void *factory_state, const char *const *options);

#ifdef __cplusplus
}
#endif
#endif /* SESSIONS_H */
