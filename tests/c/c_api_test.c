/* The C ABI from plain C99, compiled against the *installed* header and
 * library (pkg-config), as a C user would. Prints "N passed, M failed". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sessions.h>

static int passed, failed;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (cond) {                                                                  \
      passed++;                                                                  \
    } else {                                                                     \
      failed++;                                                                  \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__,     \
              __LINE__, #cond, sess_last_error());                               \
    }                                                                            \
  } while (0)

static const char secret[] = "plain-c-secret-plain-c-secret-plain-c!";

static sess_store *open_store(const char *uri) {
  sess_config *config = NULL;
  sess_store *store = NULL;
  CHECK(sess_config_new(&config) == SESS_OK);
  CHECK(sess_config_add_secret(config, secret, strlen(secret)) == SESS_OK);
  CHECK(sess_config_set(config, "idle_timeout", "30m") == SESS_OK);
  CHECK(sess_store_open(uri, config, &store) == SESS_OK);
  sess_config_free(config);
  return store;
}

/* One request: returns the "name=value" cookie to send next (malloc'd). */
static char *visit(sess_store *store, const char *cookie, int64_t *count_seen) {
  sess_request *req = NULL;
  sess_session *s = NULL;
  int64_t count = -1;
  char *next = NULL;
  CHECK(sess_request_begin(cookie, cookie ? strlen(cookie) : 0, &req) == SESS_OK);
  CHECK(sess_request_session(req, store, "mysession", &s) == SESS_OK);
  if (sess_get_int(s, "count", &count) == SESS_NOT_FOUND) count = 0;
  *count_seen = count;
  CHECK(sess_set_int(s, "count", count + 1) == SESS_OK);
  CHECK(sess_request_finish(req) == SESS_OK);
  CHECK(sess_request_set_cookie_count(req) == 1);
  if (sess_request_set_cookie_count(req) == 1) {
    size_t len = 0;
    const char *line = sess_request_set_cookie(req, 0, &len);
    size_t pair = strcspn(line, ";");
    CHECK(len > pair);
    next = malloc(pair + 1);
    memcpy(next, line, pair);
    next[pair] = '\0';
  }
  sess_request_free(req);
  return next;
}

static void test_cycle(const char *uri) {
  sess_store *store = open_store(uri);
  char *cookie = NULL;
  int64_t seen = -1;
  int i;
  for (i = 0; i < 5; i++) {
    char *next = visit(store, cookie, &seen);
    CHECK(seen == i);
    free(cookie);
    cookie = next;
  }
  free(cookie);
  sess_store_close(store);
}

static void test_errors(void) {
  sess_store *store = open_store("cookie:");
  sess_request *req = NULL;
  sess_session *s = NULL;
  int64_t v = 0;
  char *json = NULL;
  size_t len = 0;
  const char *tampered = "mysession=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

  CHECK(sess_request_begin(tampered, strlen(tampered), &req) == SESS_OK);
  CHECK(sess_request_session(req, store, "mysession", &s) == SESS_OK);
  CHECK(sess_session_status(s) != SESS_STATUS_VALID);
  CHECK(sess_session_is_new(s) == 1);
  CHECK(sess_get_int(s, "count", &v) == SESS_NOT_FOUND);
  CHECK(sess_set_json(s, "cart", "[1,2,3]", 7) == SESS_OK);
  CHECK(sess_get_json(s, "cart", &json, &len) == SESS_OK);
  CHECK(json != NULL && strcmp(json, "[1,2,3]") == 0 && len == 7);
  sess_free(json);
  CHECK(sess_get_int(s, "cart", &v) == SESS_E_TYPE_MISMATCH);
  CHECK(strlen(sess_last_error()) > 0);
  CHECK(sess_request_finish(req) == SESS_OK);
  sess_request_free(req);
  sess_store_close(store);
  CHECK(strcmp(sess_strerror(SESS_E_STORE_UNAVAILABLE), "store unavailable") == 0);
}

int main(void) {
  CHECK(sess_version_number() / 10000 == SESS_VERSION_MAJOR);
  test_cycle("cookie:");
  test_cycle("memory:?max_sessions=1000");
  test_errors();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
