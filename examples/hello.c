/* The README's C example: count visits in a session, from a raw Cookie:
 * header to the Set-Cookie: lines to send. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sessions.h>

int main(int argc, char **argv) {
  const char *secret = "an example secret of at least 32 bytes!!";
  const char *cookie = argc > 1 ? argv[1] : "";  /* the request's Cookie: header */
  sess_config *config; sess_store *store; sess_request *req; sess_session *s;
  int64_t visits = 0;

  sess_config_new(&config);
  sess_config_add_secret(config, secret, strlen(secret));
  if (sess_store_open("cookie:", config, &store) != SESS_OK) {
    fprintf(stderr, "open: %s\n", sess_last_error());
    return 1;
  }
  sess_config_free(config);

  sess_request_begin(cookie, strlen(cookie), &req);
  if (sess_request_session(req, store, "mysession", &s) == SESS_OK) {
    sess_get_int(s, "visits", &visits);                   /* stays 0 if absent */
    sess_set_int(s, "visits", visits + 1);
    printf("visit %" PRId64 " (cookie %s)\n", visits + 1, sess_status_name(sess_session_status(s)));
  }
  if (sess_request_finish(req) != SESS_OK) fprintf(stderr, "save: %s\n", sess_last_error());
  for (size_t i = 0; i < sess_request_set_cookie_count(req); i++)
    printf("Set-Cookie: %s\n", sess_request_set_cookie(req, i, NULL));
  sess_request_free(req);
  sess_store_close(store);
  return 0;
}
