/*
 * ngx_http_sessions_module: nginx reads the sessions that an application
 * writes with libsessions, and gates locations on them.
 *
 * Where the work happens, per request in a location with sessions_store:
 *
 *  - REWRITE phase (our handler runs before the rewrite module's in the same
 *    location, so `set`, `if` and `return` there see the session): the
 *    Cookie header is decoded with the C API. The cookie store needs no I/O
 *    and is decoded right there. Every other store is read on an nginx
 *    thread pool (ngx_thread_task_post): the request waits, the worker does
 *    not. With sessions_touch on, the renewal is written in the same task.
 *    With sessions_csrf on, the load also mints the request's CSRF token
 *    (creating and saving the session's CSRF secret if it has none yet),
 *    and requests with an unsafe method are refused (403) right after it
 *    unless they carry a token of their session.
 *  - ACCESS phase: sessions_require answers 401 (or 302) without the key,
 *    and 503 when the store could not be read.
 *  - Header filter: the Set-Cookie of a renewal or of a new CSRF secret,
 *    unless the response already sets that cookie (the application's write
 *    is the newer one).
 *  - Variables: $session_id, $session_status, $session_csrf_token and
 *    $session_KEY read the loaded session.
 *  - With sessions_cache_valid, each worker keeps valid sessions it loaded
 *    for that long, by cookie value, and serves them without a load.
 *
 * Store handles are opened in each worker (init_process), never in the
 * master: the master only validates (sess_store_check), reads the secret
 * files, and forks.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include <pthread.h>
#include <sessions.h>

#if SESS_VERSION_MAJOR != 0
#error "this module is written against libsessions 0.x"
#endif



#define NGX_HTTP_SESSIONS_DENY   0  /* sessions_on_error deny: 503 */
#define NGX_HTTP_SESSIONS_PASS   1  /* sessions_on_error pass */

/* A store whose failures were just logged is logged again after this long
 * (with the count of failures in between), not on every request. */
#define NGX_HTTP_SESSIONS_LOG_INTERVAL  60000

/* A worker whose store could not be opened retries at most this often. */
#define NGX_HTTP_SESSIONS_REOPEN_SECONDS  1

/* A worker's session cache (sessions_cache_valid): sets of 4 entries; a new
 * entry takes a free or expired place in its set, else the one that
 * expires first. */
#define NGX_HTTP_SESSIONS_CACHE_SLOTS  16384
#define NGX_HTTP_SESSIONS_CACHE_WAYS   4


/* One store as the configuration names it: URI, secrets and cookie
 * options. Locations that say the same share one; each worker opens its
 * own handle. */
typedef struct {
    ngx_str_t            uri;          /* NUL-terminated */
    ngx_str_t            shown;        /* the URI without credentials, for logs */
    ngx_str_t            secret_file;
    ngx_array_t         *secrets;      /* of ngx_str_t */
    ngx_array_t         *options;      /* of ngx_keyval_t, NUL-terminated */
    ngx_str_t            checked_name; /* the last cookie name found valid */
    unsigned             does_io:1;    /* any store but cookie: */

    /* Per worker, after fork. */
    sess_config         *config;
    sess_store          *handle;       /* read by pool threads: atomic */
    pthread_mutex_t      open_lock;
    time_t               next_open;    /* under open_lock */
    char                 open_error[256];

    /* Failure bursts; the worker's event thread only. */
    ngx_uint_t           failing;
    ngx_uint_t           unlogged;
    ngx_msec_t           logged_at;
} ngx_http_sessions_store_t;


typedef struct {
    ngx_array_t          stores;       /* of ngx_http_sessions_store_t * */
} ngx_http_sessions_main_conf_t;


typedef struct {
    ngx_int_t                   enabled;      /* unset, 0 (off) or 1 */
    ngx_str_t                   uri;
    ngx_str_t                   secret_file;
    ngx_array_t                *secrets;
    ngx_str_t                   cookie_name;  /* NUL-terminated */
    ngx_array_t                *cookie_options;
    ngx_str_t                   require;      /* NUL-terminated; len 0: none */
    ngx_http_complex_value_t   *redirect;
    ngx_flag_t                  touch;
    ngx_uint_t                  on_error;
    ngx_str_t                   thread_pool_name;
    ngx_msec_t                  cache_valid;  /* 0: no cache */
    ngx_flag_t                  csrf;
    ngx_str_t                   csrf_header;
#if (NGX_THREADS)
    ngx_thread_pool_t          *thread_pool;
#endif
    ngx_http_sessions_store_t  *store;        /* after merge; NULL: off */
} ngx_http_sessions_loc_conf_t;


/* A loaded request and its session, shared by the requests that read it
 * from the cache and by the cache itself. Event thread only. */
typedef struct {
    sess_request               *req;
    sess_session               *session;
    ngx_uint_t                  refs;
    unsigned                    csrf:1;        /* its CSRF secret is saved */
} ngx_http_sessions_shared_t;


typedef struct {
    ngx_http_sessions_store_t  *store;
    ngx_str_t                   name;          /* the cookie's name */
    ngx_str_t                   value;         /* its value (malloc'd) */
    ngx_msec_t                  expires;
    ngx_http_sessions_shared_t *shared;
} ngx_http_sessions_cache_entry_t;


/* One load: the request's session, and what the load found. A pool thread
 * writes it while the request waits; the event thread reads it after. */
typedef struct {
    ngx_http_request_t         *request;
    ngx_http_sessions_store_t  *store;
    ngx_str_t                   cookie_name;
    ngx_str_t                   header;        /* the Cookie header(s) */
    unsigned                    touch:1;
    unsigned                    csrf:1;        /* mint a CSRF token at load */
    unsigned                    csrf_unsaved:1; /* the secret is not stored */
    unsigned                    done:1;
    unsigned                    finished:1;    /* a touch or a new CSRF
                                                  secret called finish */
    unsigned                    cookies_sent:1;
    int                         rc;            /* SESS_OK or the load's error */
    int                         touch_rc;      /* finish's result */
    size_t                      csrf_len;      /* 0: no token minted */
    u_char                      csrf_token[96];
    sess_request               *req;
    sess_session               *session;
    ngx_http_sessions_shared_t *shared;        /* req and session, if shared */
    ngx_str_t                   cache_key;     /* the cookie's value, if cacheable */
    ngx_msec_t                  cache_valid;
    char                        error[256];
} ngx_http_sessions_ctx_t;


static ngx_int_t ngx_http_sessions_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_sessions_init(ngx_conf_t *cf);
static void *ngx_http_sessions_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_sessions_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_sessions_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_sessions_store_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_sessions_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sessions_cookie(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sessions_require(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sessions_csrf_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_sessions_init_process(ngx_cycle_t *cycle);
static void ngx_http_sessions_release(ngx_http_sessions_shared_t *shared);
static void ngx_http_sessions_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_sessions_on_error[] = {
    { ngx_string("deny"), NGX_HTTP_SESSIONS_DENY },
    { ngx_string("pass"), NGX_HTTP_SESSIONS_PASS },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_sessions_commands[] = {

    { ngx_string("sessions_store"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sessions_store_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sessions_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sessions_secret_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sessions_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_sessions_cookie,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sessions_require"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sessions_require,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sessions_require_redirect"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sessions_loc_conf_t, redirect),
      NULL },

    { ngx_string("sessions_touch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sessions_loc_conf_t, touch),
      NULL },

    { ngx_string("sessions_on_error"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sessions_loc_conf_t, on_error),
      &ngx_http_sessions_on_error },

    { ngx_string("sessions_cache_valid"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sessions_loc_conf_t, cache_valid),
      NULL },

    { ngx_string("sessions_csrf"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sessions_loc_conf_t, csrf),
      NULL },

    { ngx_string("sessions_csrf_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sessions_csrf_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sessions_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sessions_loc_conf_t, thread_pool_name),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_sessions_module_ctx = {
    ngx_http_sessions_add_variables,       /* preconfiguration */
    ngx_http_sessions_init,                /* postconfiguration */

    ngx_http_sessions_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_sessions_create_loc_conf,     /* create location configuration */
    ngx_http_sessions_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_sessions_module = {
    NGX_MODULE_V1,
    &ngx_http_sessions_module_ctx,         /* module context */
    ngx_http_sessions_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_sessions_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_sessions_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;

/* The worker's session cache; allocated at the first insert. */
static ngx_http_sessions_cache_entry_t  *ngx_http_sessions_cache;

static ngx_str_t  ngx_http_sessions_default_pool = ngx_string("default");

/* A secret that passes the length check, for validating a URI on its own. */
static const char  ngx_http_sessions_probe_secret[] =
    "sessions-uri-check-sessions-uri-check";


/* ---- Configuration ---------------------------------------------------- */

static void *
ngx_http_sessions_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_sessions_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_sessions_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&smcf->stores, cf->pool, 4,
                       sizeof(ngx_http_sessions_store_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return smcf;
}


static void *
ngx_http_sessions_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_sessions_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_sessions_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /* ngx_pcalloc left the strings unset (data NULL) and store NULL. */
    conf->enabled = NGX_CONF_UNSET;
    conf->secrets = NGX_CONF_UNSET_PTR;
    conf->cookie_options = NGX_CONF_UNSET_PTR;
    conf->redirect = NGX_CONF_UNSET_PTR;
    conf->touch = NGX_CONF_UNSET;
    conf->on_error = NGX_CONF_UNSET_UINT;
    conf->cache_valid = NGX_CONF_UNSET_MSEC;
    conf->csrf = NGX_CONF_UNSET;

    return conf;
}


/* A copy of `s` with a NUL after it, from the configuration pool. */
static ngx_int_t
ngx_http_sessions_cstr(ngx_pool_t *pool, ngx_str_t *s, u_char *data,
    size_t len)
{
    s->data = ngx_pnalloc(pool, len + 1);
    if (s->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s->data, data, len);
    s->data[len] = '\0';
    s->len = len;

    return NGX_OK;
}


/* A config from the store's secrets and cookie options; NULL with the
 * library's message in *error. */
static sess_config *
ngx_http_sessions_make_config(ngx_array_t *secrets, ngx_array_t *options,
    const char **error)
{
    int            rc;
    ngx_str_t     *secret;
    ngx_uint_t     i;
    sess_config   *config;
    ngx_keyval_t  *kv;

    if (sess_config_new(&config) != SESS_OK) {
        *error = sess_last_error();
        return NULL;
    }

    secret = secrets->elts;
    for (i = 0; i < secrets->nelts; i++) {
        rc = sess_config_add_secret(config, secret[i].data, secret[i].len);
        if (rc != SESS_OK) {
            goto failed;
        }
    }

    if (options != NULL) {
        kv = options->elts;
        for (i = 0; i < options->nelts; i++) {
            rc = sess_config_set(config, (char *) kv[i].key.data,
                                 (char *) kv[i].value.data);
            if (rc != SESS_OK) {
                goto failed;
            }
        }
    }

    return config;

failed:

    *error = sess_last_error();
    sess_config_free(config);
    return NULL;
}


static char *
ngx_http_sessions_store_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_sessions_loc_conf_t *slcf = conf;

    int           rc;
    ngx_str_t    *value;
    sess_config  *config;

    if (slcf->enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        slcf->enabled = 0;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[1].data, "memory:", 7) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_store \"%V\": a memory: store lives in "
                           "one process, so nginx cannot see the "
                           "application's sessions; use a shared store "
                           "(cookie:, redis:, memcached:, postgresql:, "
                           "mongodb:, sqlite: or file:)", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* The URI alone, checked here so that its error names this line; the
     * secrets and cookie options are checked with it after merging. */
    if (sess_config_new(&config) != SESS_OK) {
        return NGX_CONF_ERROR;
    }

    rc = sess_config_add_secret(config, ngx_http_sessions_probe_secret,
                                sizeof(ngx_http_sessions_probe_secret) - 1);
    if (rc == SESS_OK) {
        rc = sess_store_check((char *) value[1].data, config);
    }

    sess_config_free(config);

    if (rc != SESS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_store \"%V\": %s (%s)", &value[1],
                           sess_strerror(rc), sess_last_error());
        return NGX_CONF_ERROR;
    }

    slcf->enabled = 1;
    slcf->uri = value[1];

    return NGX_CONF_OK;
}


/* Reads the secrets: one per line, the first seals and all open (so a
 * rotation adds the new secret on top). Empty lines and lines starting with
 * '#' are skipped. The file holds the keys that forge sessions: one that
 * every user can read or write is refused. */
static char *
ngx_http_sessions_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sessions_loc_conf_t *slcf = conf;

    u_char          *buf, *p, *end, *eol;
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_str_t       *value, path, *secret;
    ngx_uint_t       line;
    ngx_file_info_t  fi;
    u_char           mode[5];

    if (slcf->secrets != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "sessions_secret_file \"%V\" cannot be opened",
                           &path);
        return NGX_CONF_ERROR;
    }

    buf = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "sessions_secret_file \"%V\": fstat() failed",
                           &path);
        goto failed;
    }

    if (fi.st_mode & (S_IROTH|S_IWOTH)) {
        /* ngx_sprintf has no octal. */
        mode[0] = '0' + ((fi.st_mode >> 9) & 7);
        mode[1] = '0' + ((fi.st_mode >> 6) & 7);
        mode[2] = '0' + ((fi.st_mode >> 3) & 7);
        mode[3] = '0' + (fi.st_mode & 7);
        mode[4] = '\0';
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_secret_file \"%V\" is %s by every user "
                           "(mode %s); its secrets forge sessions: "
                           "chmod o-rwx it",
                           &path,
                           (fi.st_mode & S_IROTH) ? "readable" : "writable",
                           mode);
        goto failed;
    }

    if (!S_ISREG(fi.st_mode) || fi.st_size > 65536) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_secret_file \"%V\" is not a regular "
                           "file of at most 64 KB", &path);
        goto failed;
    }

    buf = ngx_pnalloc(cf->pool, (size_t) fi.st_size + 1);
    if (buf == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, buf, (size_t) fi.st_size);
    if (n != (ssize_t) fi.st_size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "sessions_secret_file \"%V\" cannot be read",
                           &path);
        goto failed;
    }

    ngx_close_file(fd);
    fd = NGX_INVALID_FILE;

    slcf->secrets = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
    if (slcf->secrets == NULL) {
        return NGX_CONF_ERROR;
    }

    end = buf + n;
    line = 0;

    for (p = buf; p < end; p = eol + 1) {
        line++;
        eol = ngx_strlchr(p, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        n = eol - p;
        if (n > 0 && p[n - 1] == '\r') {
            n--;
        }

        if (n == 0 || p[0] == '#') {
            continue;
        }

        if (n < SESS_MIN_SECRET) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "sessions_secret_file \"%V\", line %ui: a "
                               "secret must be at least %d bytes, this one "
                               "is %z", &path, line, SESS_MIN_SECRET,
                               (size_t) n);
            return NGX_CONF_ERROR;
        }

        secret = ngx_array_push(slcf->secrets);
        if (secret == NULL) {
            return NGX_CONF_ERROR;
        }

        secret->data = p;
        secret->len = n;
    }

    if (slcf->secrets->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_secret_file \"%V\" holds no secret",
                           &path);
        return NGX_CONF_ERROR;
    }

    slcf->secret_file = path;

    return NGX_CONF_OK;

failed:

    ngx_close_file(fd);
    return NGX_CONF_ERROR;
}


/* RFC 6265 cookie-name: a token. */
static ngx_int_t
ngx_http_sessions_valid_cookie_name(ngx_str_t *name)
{
    u_char      c;
    ngx_uint_t  i;

    if (name->len == 0 || name->len > 255) {
        return 0;
    }

    for (i = 0; i < name->len; i++) {
        c = name->data[i];
        if (c <= ' ' || c >= 0x7f || ngx_strchr("()<>@,;:\\\"/[]?={}", c)) {
            return 0;
        }
    }

    return 1;
}


static char *
ngx_http_sessions_cookie(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sessions_loc_conf_t *slcf = conf;

    static const char  *attributes[] = {
        "path", "domain", "max_age", "secure", "http_only", "same_site",
        "partitioned", NULL
    };

    u_char        *eq;
    ngx_str_t     *value;
    ngx_uint_t     i, k;
    sess_config   *config;
    ngx_keyval_t  *kv;

    if (slcf->cookie_name.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!ngx_http_sessions_valid_cookie_name(&value[1])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_cookie: \"%V\" is not a cookie name",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    slcf->cookie_name = value[1];  /* the parser's strings end with NUL */

    slcf->cookie_options = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
    if (slcf->cookie_options == NULL) {
        return NGX_CONF_ERROR;
    }

    if (sess_config_new(&config) != SESS_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        eq = (u_char *) ngx_strchr(value[i].data, '=');
        if (eq == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "sessions_cookie: \"%V\" is not name=value",
                               &value[i]);
            goto failed;
        }

        kv = ngx_array_push(slcf->cookie_options);
        if (kv == NULL) {
            goto failed;
        }

        if (ngx_http_sessions_cstr(cf->pool, &kv->key, value[i].data,
                                   eq - value[i].data)
            != NGX_OK)
        {
            goto failed;
        }

        kv->value.data = eq + 1;
        kv->value.len = value[i].data + value[i].len - (eq + 1);

        for (k = 0; attributes[k]; k++) {
            if (ngx_strcmp(kv->key.data, attributes[k]) == 0) {
                break;
            }
        }

        if (attributes[k] == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "sessions_cookie: \"%V\" is not a cookie "
                               "attribute (path, domain, max_age, secure, "
                               "http_only, same_site, partitioned); "
                               "lifetimes and the codec go in the store "
                               "URI: sessions_store \"redis://...?"
                               "idle_timeout=30m\"", &kv->key);
            goto failed;
        }

        if (sess_config_set(config, (char *) kv->key.data,
                            (char *) kv->value.data)
            != SESS_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "sessions_cookie: %s",
                               sess_last_error());
            goto failed;
        }
    }

    sess_config_free(config);
    return NGX_CONF_OK;

failed:

    sess_config_free(config);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_sessions_require(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sessions_loc_conf_t *slcf = conf;

    ngx_str_t  *value;

    if (slcf->require.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&slcf->require, "");
        return NGX_CONF_OK;
    }

    if (value[1].len == 0 || value[1].len > 255) {
        return "takes a session key of 1 to 255 bytes";
    }

    slcf->require = value[1];

    return NGX_CONF_OK;
}


/* The request header that carries the CSRF token: a header name (an RFC
 * 9110 token). */
static char *
ngx_http_sessions_csrf_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sessions_loc_conf_t *slcf = conf;

    ngx_str_t  *value;

    if (slcf->csrf_header.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!ngx_http_sessions_valid_cookie_name(&value[1])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_csrf_header: \"%V\" is not a header "
                           "name", &value[1]);
        return NGX_CONF_ERROR;
    }

    slcf->csrf_header = value[1];

    return NGX_CONF_OK;
}


/* The URI as logs may show it: without its query (which may hold a
 * password) and with any user:password@ replaced by "***@". */
static ngx_int_t
ngx_http_sessions_shown_uri(ngx_pool_t *pool, ngx_str_t *uri, ngx_str_t *out)
{
    u_char  *p, *end, *authority, *at;

    end = ngx_strlchr(uri->data, uri->data + uri->len, '?');
    if (end == NULL) {
        end = uri->data + uri->len;
    }

    authority = NULL;
    for (p = uri->data; p + 3 <= end; p++) {
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            authority = p + 3;
            break;
        }
    }

    at = NULL;
    for (p = authority; p && p < end && *p != '/'; p++) {
        if (*p == '@') {
            at = p;
        }
    }

    out->len = (end - uri->data) + 3;
    out->data = ngx_pnalloc(pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    if (at == NULL) {
        p = ngx_cpymem(out->data, uri->data, end - uri->data);

    } else {
        p = ngx_cpymem(out->data, uri->data, authority - uri->data);
        p = ngx_cpymem(p, "***", 3);
        p = ngx_cpymem(p, at, end - at);
    }

    out->len = p - out->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sessions_same_options(ngx_array_t *a, ngx_array_t *b)
{
    ngx_uint_t     i;
    ngx_keyval_t  *x, *y;

    if (a == NULL || b == NULL) {
        return a == b;
    }

    if (a->nelts != b->nelts) {
        return 0;
    }

    x = a->elts;
    y = b->elts;
    for (i = 0; i < a->nelts; i++) {
        if (ngx_strcmp(x[i].key.data, y[i].key.data) != 0
            || ngx_strcmp(x[i].value.data, y[i].value.data) != 0)
        {
            return 0;
        }
    }

    return 1;
}


/* The store for this (URI, secret file, cookie options): shared with the
 * locations that say the same, created and fully checked otherwise. */
static ngx_http_sessions_store_t *
ngx_http_sessions_find_store(ngx_conf_t *cf, ngx_http_sessions_loc_conf_t *conf)
{
    const char                     *error;
    ngx_uint_t                      i;
    sess_config                    *config;
    ngx_http_sessions_store_t      *store, **stores, **slot;
    ngx_http_sessions_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_sessions_module);

    stores = smcf->stores.elts;
    for (i = 0; i < smcf->stores.nelts; i++) {
        store = stores[i];
        if (store->uri.len == conf->uri.len
            && ngx_strcmp(store->uri.data, conf->uri.data) == 0
            && store->secret_file.len == conf->secret_file.len
            && ngx_strcmp(store->secret_file.data, conf->secret_file.data) == 0
            && ngx_http_sessions_same_options(store->options,
                                              conf->cookie_options))
        {
            return store;
        }
    }

    config = ngx_http_sessions_make_config(conf->secrets, conf->cookie_options,
                                           &error);
    if (config == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_store \"%V\" with sessions_secret_file "
                           "\"%V\": %s", &conf->uri, &conf->secret_file,
                           error);
        return NULL;
    }

    if (sess_store_check((char *) conf->uri.data, config) != SESS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_store \"%V\": %s", &conf->uri,
                           sess_last_error());
        sess_config_free(config);
        return NULL;
    }

    sess_config_free(config);

    store = ngx_pcalloc(cf->pool, sizeof(ngx_http_sessions_store_t));
    if (store == NULL) {
        return NULL;
    }

    store->uri = conf->uri;
    store->secret_file = conf->secret_file;
    store->secrets = conf->secrets;
    store->options = conf->cookie_options;
    /* cookie: with a revocation store reads its stamps (now and then,
     * past revocation_cache) from a server: off the event loop too. */
    store->does_io = ngx_strncmp(conf->uri.data, "cookie:", 7) != 0
                     || ngx_strstr(conf->uri.data, "revocation=") != NULL;

    if (ngx_http_sessions_shown_uri(cf->pool, &conf->uri, &store->shown)
        != NGX_OK)
    {
        return NULL;
    }

    slot = ngx_array_push(&smcf->stores);
    if (slot == NULL) {
        return NULL;
    }

    *slot = store;

    return store;
}


/* The cookie name against the store's effective cookie options, as
 * sess_request_session will check it: refused here, at nginx -t, rather
 * than on every request. */
static ngx_int_t
ngx_http_sessions_check_name(ngx_conf_t *cf,
    ngx_http_sessions_loc_conf_t *conf)
{
    int                         rc;
    const char                 *error;
    sess_config                *config;
    ngx_http_sessions_store_t  *store;

    store = conf->store;

    if (store->checked_name.len == conf->cookie_name.len
        && ngx_strcmp(store->checked_name.data, conf->cookie_name.data) == 0)
    {
        return NGX_OK;
    }

    config = ngx_http_sessions_make_config(conf->secrets,
                                           conf->cookie_options, &error);
    if (config == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "sessions_store \"%V\": "
                           "%s", &conf->uri, error);
        return NGX_ERROR;
    }

    rc = sess_store_check_name((char *) conf->uri.data, config,
                               (char *) conf->cookie_name.data);
    if (rc != SESS_OK) {
        /* The URI is not printed: its query may hold a password. */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "sessions_cookie: %s",
                           sess_last_error());
        sess_config_free(config);
        return NGX_ERROR;
    }

    sess_config_free(config);

    store->checked_name = conf->cookie_name;

    return NGX_OK;
}


static char *
ngx_http_sessions_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_sessions_loc_conf_t *prev = parent;
    ngx_http_sessions_loc_conf_t *conf = child;

    if (conf->enabled == NGX_CONF_UNSET) {
        conf->enabled = prev->enabled;
        conf->uri = prev->uri;
    }

    if (conf->secrets == NGX_CONF_UNSET_PTR) {
        conf->secrets = prev->secrets;
        conf->secret_file = prev->secret_file;
    }

    if (conf->cookie_name.data == NULL) {
        conf->cookie_name = prev->cookie_name;
        conf->cookie_options = prev->cookie_options;
    }

    ngx_conf_merge_str_value(conf->require, prev->require, "");
    ngx_conf_merge_ptr_value(conf->redirect, prev->redirect, NULL);
    ngx_conf_merge_value(conf->touch, prev->touch, 0);
    ngx_conf_merge_uint_value(conf->on_error, prev->on_error,
                              NGX_HTTP_SESSIONS_DENY);
    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             "");
    ngx_conf_merge_msec_value(conf->cache_valid, prev->cache_valid, 0);
    ngx_conf_merge_value(conf->csrf, prev->csrf, 0);
    ngx_conf_merge_str_value(conf->csrf_header, prev->csrf_header,
                             "X-CSRF-Token");

    if (conf->enabled != 1) {
        if (conf->csrf) {
            /* Silently unprotected would be worse than refused. */
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "sessions_csrf is on where sessions_store is "
                               "off: nginx has no session to check the "
                               "token against; set a sessions_store, or "
                               "sessions_csrf off here");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (conf->secrets == NGX_CONF_UNSET_PTR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions_store \"%V\" needs a "
                           "sessions_secret_file: the application's secrets",
                           &conf->uri);
        return NGX_CONF_ERROR;
    }

    if (conf->cookie_name.data == NULL) {
        ngx_str_set(&conf->cookie_name, "session");
        conf->cookie_options = NULL;
    }

    conf->store = ngx_http_sessions_find_store(cf, conf);
    if (conf->store == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_sessions_check_name(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (!conf->store->does_io) {
        return NGX_CONF_OK;
    }

#if (NGX_THREADS)
    conf->thread_pool = ngx_thread_pool_add(cf,
                            conf->thread_pool_name.len
                            ? &conf->thread_pool_name
                            : &ngx_http_sessions_default_pool);
    if (conf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "sessions_store \"%V\": this nginx was built without "
                       "threads (--with-threads), which every store but "
                       "cookie: needs to read without blocking the worker",
                       &conf->uri);
    return NGX_CONF_ERROR;
#endif
}


/* ---- Per worker --------------------------------------------------------- */

static ngx_int_t
ngx_http_sessions_init_process(ngx_cycle_t *cycle)
{
    const char                     *error;
    ngx_uint_t                      i;
    ngx_http_sessions_store_t      *store, **stores;
    ngx_http_sessions_main_conf_t  *smcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_sessions_module);
    if (smcf == NULL) {
        return NGX_OK;
    }

    stores = smcf->stores.elts;
    for (i = 0; i < smcf->stores.nelts; i++) {
        store = stores[i];

        if (pthread_mutex_init(&store->open_lock, NULL) != 0) {
            return NGX_ERROR;
        }

        store->config = ngx_http_sessions_make_config(store->secrets,
                                                      store->options, &error);
        if (store->config == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "sessions: store \"%V\": %s", &store->shown, error);
            return NGX_ERROR;
        }

        if (sess_store_open((char *) store->uri.data, store->config,
                            &store->handle)
            != SESS_OK)
        {
            /* A server that is down now may be up later: requests retry. */
            ngx_cpystrn((u_char *) store->open_error,
                        (u_char *) sess_last_error(),
                        sizeof(store->open_error));
            store->next_open = ngx_time() + NGX_HTTP_SESSIONS_REOPEN_SECONDS;
            store->failing = 1;
            store->logged_at = ngx_current_msec;
            ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                          "sessions: store \"%V\" cannot be opened: %s; "
                          "requests that need it get 503 (or pass, with "
                          "sessions_on_error pass) until it answers",
                          &store->shown, store->open_error);
        }
    }

    return NGX_OK;
}


static void
ngx_http_sessions_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_sessions_store_t     **stores;
    ngx_http_sessions_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_sessions_module);
    if (smcf == NULL) {
        return;
    }

    /* The thread pools have stopped by now (their module exits first). */
    if (ngx_http_sessions_cache != NULL) {
        for (i = 0; i < NGX_HTTP_SESSIONS_CACHE_SLOTS; i++) {
            if (ngx_http_sessions_cache[i].shared != NULL) {
                ngx_http_sessions_release(ngx_http_sessions_cache[i].shared);
                ngx_free(ngx_http_sessions_cache[i].value.data);
            }
        }
        ngx_free(ngx_http_sessions_cache);
        ngx_http_sessions_cache = NULL;
    }

    stores = smcf->stores.elts;
    for (i = 0; i < smcf->stores.nelts; i++) {
        sess_store_close(stores[i]->handle);
        stores[i]->handle = NULL;
        sess_config_free(stores[i]->config);
        stores[i]->config = NULL;
    }
}


/* The worker's handle; opened here when init_process could not, at most
 * once a second. Any thread. NULL with the reason in `error`. */
static sess_store *
ngx_http_sessions_handle(ngx_http_sessions_store_t *store, char *error,
    size_t size)
{
    time_t       now;
    sess_store  *handle;

    handle = __atomic_load_n(&store->handle, __ATOMIC_ACQUIRE);
    if (handle != NULL) {
        return handle;
    }

    pthread_mutex_lock(&store->open_lock);

    handle = store->handle;
    now = time(NULL);

    if (handle == NULL && store->config != NULL && now >= store->next_open) {
        if (sess_store_open((char *) store->uri.data, store->config, &handle)
            == SESS_OK)
        {
            __atomic_store_n(&store->handle, handle, __ATOMIC_RELEASE);

        } else {
            ngx_cpystrn((u_char *) store->open_error,
                        (u_char *) sess_last_error(),
                        sizeof(store->open_error));
            store->next_open = now + NGX_HTTP_SESSIONS_REOPEN_SECONDS;
        }
    }

    if (handle == NULL) {
        ngx_cpystrn((u_char *) error, (u_char *) store->open_error, size);
    }

    pthread_mutex_unlock(&store->open_lock);

    return handle;
}


/* ---- Loading ------------------------------------------------------------ */

/* Runs on the event thread (cookie:) or a pool thread (the rest); touches
 * only the ctx and the store handle. */
static void
ngx_http_sessions_load(ngx_http_sessions_ctx_t *ctx)
{
    int          rc, valid, created, touched;
    size_t       len;
    sess_store  *handle;
    const char  *token;

    handle = ngx_http_sessions_handle(ctx->store, ctx->error,
                                      sizeof(ctx->error));
    if (handle == NULL) {
        ctx->rc = SESS_E_STORE_UNAVAILABLE;
        return;
    }

    rc = sess_request_begin((char *) ctx->header.data, ctx->header.len,
                            &ctx->req);
    if (rc == SESS_OK) {
        rc = sess_request_session(ctx->req, handle,
                                  (char *) ctx->cookie_name.data,
                                  &ctx->session);
    }

    if (rc != SESS_OK) {
        ngx_cpystrn((u_char *) ctx->error, (u_char *) sess_last_error(),
                    sizeof(ctx->error));
        ctx->rc = rc;
        return;
    }

    ctx->rc = SESS_OK;
    valid = sess_session_status(ctx->session) == SESS_STATUS_VALID;
    created = 0;

    /* A valid session's token; its first one creates the session's CSRF
     * secret, which must then be saved for the token to verify later. (A
     * loaded session is unmodified: were it not, a new secret would not
     * show, and no token is minted.) */
    if (ctx->csrf && valid && !sess_session_is_modified(ctx->session)) {
        if (sess_csrf_token(ctx->session, &token, &len) == SESS_OK
            && len < sizeof(ctx->csrf_token))
        {
            ngx_memcpy(ctx->csrf_token, token, len);
            ctx->csrf_len = len;
        }
        created = sess_session_is_modified(ctx->session);
    }

    touched = ctx->touch && valid && sess_session_touch(ctx->session) == SESS_OK;

    if (created || touched) {
        ctx->finished = 1;
        ctx->touch_rc = sess_request_finish(ctx->req);
        if (ctx->touch_rc != SESS_OK) {
            ngx_cpystrn((u_char *) ctx->error, (u_char *) sess_last_error(),
                        sizeof(ctx->error));
            if (created) {
                /* Not saved: a token of it would never verify. */
                ctx->csrf_len = 0;
                ctx->csrf_unsaved = 1;
            }
        }
    }
}


static ngx_int_t
ngx_http_sessions_failed(ngx_http_sessions_ctx_t *ctx)
{
    /* An oversized Cookie header is the client's doing: a malformed
     * cookie, not a store failure. */
    return ctx->rc != SESS_OK && ctx->rc != SESS_E_HEADER_TOO_LARGE;
}


/* Logs the first failure of a burst, then one line a minute with the
 * count, and one line when the store answers again. Event thread. */
static void
ngx_http_sessions_report(ngx_http_request_t *r, ngx_http_sessions_ctx_t *ctx)
{
    ngx_uint_t                  failed;
    ngx_http_sessions_store_t  *store;

    store = ctx->store;
    failed = ngx_http_sessions_failed(ctx)
             || (ctx->finished && ctx->touch_rc != SESS_OK);

    if (failed) {
        if (!store->failing
            || ngx_current_msec - store->logged_at
               >= NGX_HTTP_SESSIONS_LOG_INTERVAL)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "sessions: store \"%V\" failed: %s "
                          "(%ui more failures since the last report; "
                          "logged at most once a minute)",
                          &store->shown, ctx->error, store->unlogged);
            store->logged_at = ngx_current_msec;
            store->unlogged = 0;

        } else {
            store->unlogged++;
        }

        store->failing = 1;
        return;
    }

    if (store->failing) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "sessions: store \"%V\" answers again (%ui failures "
                      "not logged)", &store->shown, store->unlogged);
        store->failing = 0;
        store->unlogged = 0;
    }
}


static void
ngx_http_sessions_release(ngx_http_sessions_shared_t *shared)
{
    if (--shared->refs == 0) {
        sess_request_free(shared->req);
        ngx_free(shared);
    }
}


static void
ngx_http_sessions_cleanup(void *data)
{
    ngx_http_sessions_ctx_t  *ctx = data;

    if (ctx->shared != NULL) {
        ngx_http_sessions_release(ctx->shared);
        ctx->shared = NULL;

    } else {
        sess_request_free(ctx->req);
    }

    ctx->req = NULL;
    ctx->session = NULL;
}


/* ---- The worker's cache (sessions_cache_valid) ---------------------------- */

/* The value of the one cookie called `name` in the header; no key when
 * there is none or several (the library would try each in turn). */
static void
ngx_http_sessions_cache_key(ngx_str_t *header, ngx_str_t *name,
    ngx_str_t *key)
{
    u_char  *p, *end, *pair, *eq, *stop;

    ngx_str_null(key);
    end = header->data + header->len;

    for (p = header->data; p < end; p = stop + 1) {
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        pair = p;
        stop = ngx_strlchr(p, end, ';');
        if (stop == NULL) {
            stop = end;
        }

        eq = ngx_strlchr(pair, stop, '=');
        if (eq == NULL || (size_t) (eq - pair) != name->len
            || ngx_strncmp(pair, name->data, name->len) != 0)
        {
            continue;
        }

        if (key->data != NULL) {
            ngx_str_null(key);
            return;
        }

        key->data = eq + 1;
        key->len = stop - (eq + 1);
        while (key->len && key->data[key->len - 1] == ' ') {
            key->len--;
        }
    }
}


/* The first entry of the set where `key` may be. */
static ngx_http_sessions_cache_entry_t *
ngx_http_sessions_cache_set(ngx_http_sessions_store_t *store, ngx_str_t *key)
{
    uint32_t  hash;

    hash = ngx_murmur_hash2(key->data, key->len) ^ (uint32_t) (uintptr_t) store;
    return &ngx_http_sessions_cache[(hash % (NGX_HTTP_SESSIONS_CACHE_SLOTS
                                             / NGX_HTTP_SESSIONS_CACHE_WAYS))
                                    * NGX_HTTP_SESSIONS_CACHE_WAYS];
}


static ngx_uint_t
ngx_http_sessions_cache_live(ngx_http_sessions_cache_entry_t *e)
{
    return e->shared != NULL
           && (ngx_msec_int_t) (e->expires - ngx_current_msec) > 0;
}


/* Serves ctx from the cache; 1 on a hit. */
static ngx_uint_t
ngx_http_sessions_cache_get(ngx_http_sessions_ctx_t *ctx)
{
    ngx_uint_t                        i;
    ngx_http_sessions_cache_entry_t  *e;

    if (ngx_http_sessions_cache == NULL || ctx->cache_key.len == 0) {
        return 0;
    }

    e = ngx_http_sessions_cache_set(ctx->store, &ctx->cache_key);

    for (i = 0; i < NGX_HTTP_SESSIONS_CACHE_WAYS; i++, e++) {
        if (ngx_http_sessions_cache_live(e) && e->store == ctx->store
            && e->name.len == ctx->cookie_name.len
            && ngx_strcmp(e->name.data, ctx->cookie_name.data) == 0
            && e->value.len == ctx->cache_key.len
            && ngx_memcmp(e->value.data, ctx->cache_key.data, e->value.len)
               == 0)
        {
            if (ctx->csrf && !e->shared->csrf) {
                /* Cached where no token was minted: its secret may not
                 * exist yet. Load it (the load replaces this entry). */
                return 0;
            }

            e->shared->refs++;
            ctx->shared = e->shared;
            ctx->req = e->shared->req;
            ctx->session = e->shared->session;
            ctx->rc = SESS_OK;
            ctx->done = 1;
            return 1;
        }
    }

    return 0;
}


/* Keeps a valid session that ctx loaded, for `valid` milliseconds. */
static void
ngx_http_sessions_cache_put(ngx_http_sessions_ctx_t *ctx, ngx_msec_t valid,
    ngx_log_t *log)
{
    u_char                           *copy;
    ngx_uint_t                        i;
    ngx_http_sessions_shared_t       *shared;
    ngx_http_sessions_cache_entry_t  *e, *set;

    if (ctx->cache_key.len == 0 || ctx->rc != SESS_OK || ctx->shared != NULL
        || sess_session_status(ctx->session) != SESS_STATUS_VALID
        || ctx->csrf_unsaved
        || (ctx->finished && ctx->touch_rc != SESS_OK))
    {
        return;
    }

    if (ngx_http_sessions_cache == NULL) {
        ngx_http_sessions_cache = ngx_calloc(NGX_HTTP_SESSIONS_CACHE_SLOTS
                                  * sizeof(ngx_http_sessions_cache_entry_t),
                                  log);
        if (ngx_http_sessions_cache == NULL) {
            return;
        }
    }

    shared = ngx_alloc(sizeof(ngx_http_sessions_shared_t), log);
    copy = ngx_alloc(ctx->cache_key.len, log);
    if (shared == NULL || copy == NULL) {
        ngx_free(shared);
        ngx_free(copy);
        return;
    }

    set = ngx_http_sessions_cache_set(ctx->store, &ctx->cache_key);
    e = NULL;

    /* The entry of this cookie, if there is one (loaded again for its
     * token): no key is in a set twice. */
    for (i = 0; i < NGX_HTTP_SESSIONS_CACHE_WAYS; i++) {
        if (set[i].shared != NULL && set[i].store == ctx->store
            && set[i].name.len == ctx->cookie_name.len
            && ngx_strcmp(set[i].name.data, ctx->cookie_name.data) == 0
            && set[i].value.len == ctx->cache_key.len
            && ngx_memcmp(set[i].value.data, ctx->cache_key.data,
                          set[i].value.len) == 0)
        {
            e = &set[i];
            break;
        }
    }

    if (e == NULL) {
        e = set;
        for (i = 0; i < NGX_HTTP_SESSIONS_CACHE_WAYS; i++) {
            if (!ngx_http_sessions_cache_live(&set[i])) {
                e = &set[i];
                break;
            }
            if ((ngx_msec_int_t) (set[i].expires - e->expires) < 0) {
                e = &set[i];
            }
        }
    }

    if (e->shared != NULL) {
        ngx_http_sessions_release(e->shared);
        ngx_free(e->value.data);
    }

    shared->req = ctx->req;
    shared->session = ctx->session;
    shared->refs = 2;  /* this request, and the cache */
    shared->csrf = ctx->csrf_len != 0;
    ctx->shared = shared;

    e->store = ctx->store;
    e->name = ctx->cookie_name;
    ngx_memcpy(copy, ctx->cache_key.data, ctx->cache_key.len);
    e->value.data = copy;
    e->value.len = ctx->cache_key.len;
    e->expires = ngx_current_msec + valid;
    e->shared = shared;
}


/* The request's Cookie header; several (HTTP/2 sends one per cookie) are
 * joined with "; ". */
static ngx_int_t
ngx_http_sessions_cookie_header(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char            *p;
    size_t             len;
    ngx_uint_t         i, n;
    ngx_table_elt_t  **headers;

#if (nginx_version >= 1023000)
    ngx_table_elt_t   *h;
    ngx_table_elt_t   *list[64];

    n = 0;
    for (h = r->headers_in.cookie; h && n < 64; h = h->next) {
        list[n++] = h;
    }
    headers = list;
#else
    headers = r->headers_in.cookies.elts;
    n = r->headers_in.cookies.nelts;
#endif

    ngx_str_null(out);

    if (n == 0) {
        return NGX_OK;
    }

    if (n == 1) {
        *out = headers[0]->value;
        return NGX_OK;
    }

    len = 0;
    for (i = 0; i < n; i++) {
        len += headers[i]->value.len + 2;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    for (i = 0; i < n; i++) {
        if (i > 0) {
            *p++ = ';';
            *p++ = ' ';
        }
        p = ngx_cpymem(p, headers[i]->value.data, headers[i]->value.len);
    }

    out->len = p - out->data;

    return NGX_OK;
}


/* After a load (or a failure to post one): logs, and caches. */
static void
ngx_http_sessions_loaded_now(ngx_http_request_t *r,
    ngx_http_sessions_ctx_t *ctx)
{
    ctx->done = 1;
    ngx_http_sessions_report(r, ctx);

    if (ctx->cache_valid) {
        ngx_http_sessions_cache_put(ctx, ctx->cache_valid, r->connection->log);
    }
}


/* A fresh load context for the location's store, set as the request's. */
static ngx_http_sessions_ctx_t *
ngx_http_sessions_start(ngx_http_request_t *r,
    ngx_http_sessions_loc_conf_t *slcf)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_sessions_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_sessions_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_sessions_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->store = slcf->store;
    ctx->cookie_name = slcf->cookie_name;
    ctx->touch = slcf->touch ? 1 : 0;
    ctx->csrf = slcf->csrf ? 1 : 0;
    ctx->cache_valid = slcf->cache_valid;

    if (ngx_http_sessions_cookie_header(r, &ctx->header) != NGX_OK) {
        return NULL;
    }

    /* A renewal needs the store: touched locations read it every time. */
    if (slcf->cache_valid && !slcf->touch) {
        ngx_http_sessions_cache_key(&ctx->header, &ctx->cookie_name,
                                    &ctx->cache_key);
    }

    ngx_http_set_ctx(r, ctx, ngx_http_sessions_module);

    return ctx;
}


/* The session of this request, if it is loaded (or can be, without I/O). */
static ngx_http_sessions_ctx_t *
ngx_http_sessions_loaded(ngx_http_request_t *r)
{
    ngx_http_sessions_ctx_t       *ctx;
    ngx_http_sessions_loc_conf_t  *slcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sessions_module);
    if (ctx != NULL) {
        return ctx->done ? ctx : NULL;
    }

    /* Read before our rewrite handler ran (a server-level `set` or `if`):
     * the cookie store decodes here; other stores are not read yet. */
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sessions_module);
    if (slcf->store == NULL || slcf->store->does_io) {
        return NULL;
    }

    ctx = ngx_http_sessions_start(r, slcf);
    if (ctx == NULL) {
        return NULL;
    }

    ngx_http_sessions_load(ctx);
    ngx_http_sessions_loaded_now(r, ctx);

    return ctx;
}


/* The one request header called `name`; NULL when there is none or
 * several. */
static ngx_table_elt_t *
ngx_http_sessions_header_in(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    found = NULL;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return found;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            if (found != NULL) {
                return NULL;
            }
            found = &h[i];
        }
    }
}


/* sessions_csrf: a request with an unsafe method (anything but GET, HEAD,
 * OPTIONS and TRACE) passes only with a token of its valid session in the
 * header; 403 otherwise, 503 when the store could not be read. */
static ngx_int_t
ngx_http_sessions_csrf_check(ngx_http_request_t *r,
    ngx_http_sessions_loc_conf_t *slcf, ngx_http_sessions_ctx_t *ctx)
{
    const char       *why;
    ngx_table_elt_t  *h;

    if (!slcf->csrf
        || (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_OPTIONS
                         |NGX_HTTP_TRACE)))
    {
        return NGX_DECLINED;
    }

    /* Also with sessions_on_error pass: an outage must not open the door
     * to forged requests. */
    if (ngx_http_sessions_failed(ctx)) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    h = NULL;

    if (ctx->session == NULL
        || sess_session_status(ctx->session) != SESS_STATUS_VALID)
    {
        why = "without a valid session";

    } else if ((h = ngx_http_sessions_header_in(r, &slcf->csrf_header))
               == NULL)
    {
        why = "without exactly one token header";

    } else if (sess_csrf_verify(ctx->session, (char *) h->value.data,
                                h->value.len)
               != SESS_OK)
    {
        why = "with a token that is not its session's";

    } else {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "sessions: \"%V\" request refused (403) by sessions_csrf: "
                  "%s (\"%V\")", &r->method_name, why, &slcf->csrf_header);

    return NGX_HTTP_FORBIDDEN;
}


static ngx_int_t
ngx_http_sessions_verdict(ngx_http_request_t *r,
    ngx_http_sessions_loc_conf_t *slcf, ngx_http_sessions_ctx_t *ctx)
{
    if (ngx_http_sessions_failed(ctx)
        && slcf->on_error == NGX_HTTP_SESSIONS_DENY)
    {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    return ngx_http_sessions_csrf_check(r, slcf, ctx);
}


#if (NGX_THREADS)

static void
ngx_http_sessions_thread_handler(void *data, ngx_log_t *log)
{
    ngx_http_sessions_load(*(ngx_http_sessions_ctx_t **) data);
}


static void
ngx_http_sessions_thread_done(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_sessions_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    ngx_http_sessions_loaded_now(r, ctx);

    /* Back into the phases, at our rewrite handler, which now finds the
     * session loaded. */
    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_sessions_post(ngx_http_request_t *r,
    ngx_http_sessions_loc_conf_t *slcf, ngx_http_sessions_ctx_t *ctx)
{
    ngx_thread_task_t  *task;

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_sessions_ctx_t *));
    if (task == NULL) {
        return NGX_ERROR;
    }

    *(ngx_http_sessions_ctx_t **) task->ctx = ctx;
    task->handler = ngx_http_sessions_thread_handler;
    task->event.handler = ngx_http_sessions_thread_done;
    task->event.data = ctx;

    if (ngx_thread_task_post(slcf->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    r->main->blocked++;
    r->aio = 1;

    return NGX_OK;
}

#endif


static ngx_int_t
ngx_http_sessions_rewrite_handler(ngx_http_request_t *r)
{
    ngx_http_sessions_ctx_t       *ctx;
    ngx_http_sessions_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sessions_module);
    if (slcf->store == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_sessions_module);

    if (ctx != NULL && ctx->store == slcf->store
        && ctx->cookie_name.len == slcf->cookie_name.len
        && ngx_strcmp(ctx->cookie_name.data, slcf->cookie_name.data) == 0)
    {
        /* Loaded: by our task, by a variable, or for the location this
         * request was in before a rewrite moved it. */
        return ctx->done ? ngx_http_sessions_verdict(r, slcf, ctx) : NGX_DONE;
    }

    ctx = ngx_http_sessions_start(r, slcf);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_sessions_cache_get(ctx)) {
        return ngx_http_sessions_verdict(r, slcf, ctx);
    }

    if (!slcf->store->does_io) {
        ngx_http_sessions_load(ctx);
        ngx_http_sessions_loaded_now(r, ctx);
        return ngx_http_sessions_verdict(r, slcf, ctx);
    }

#if (NGX_THREADS)
    if (ngx_http_sessions_post(r, slcf, ctx) == NGX_OK) {
        return NGX_DONE;
    }

    /* The pool's queue is full: as if the store did not answer. */
    ctx->rc = SESS_E_STORE_UNAVAILABLE;
    ngx_cpystrn((u_char *) ctx->error,
                (u_char *) "the thread pool's queue is full (see "
                "thread_pool max_queue)", sizeof(ctx->error));
#else
    ctx->rc = SESS_E_INTERNAL;
#endif

    ngx_http_sessions_loaded_now(r, ctx);
    return ngx_http_sessions_verdict(r, slcf, ctx);
}


/* Whether the session holds `key`: present, and neither nil nor false. */
static ngx_int_t
ngx_http_sessions_holds(sess_session *s, const char *key)
{
    sess_value  v;

    if (s == NULL || sess_get(s, key, &v) != SESS_OK) {
        return 0;
    }

    return v.type != SESS_TYPE_NIL && !(v.type == SESS_TYPE_BOOL && !v.boolean);
}


static ngx_int_t
ngx_http_sessions_access_handler(ngx_http_request_t *r)
{
    ngx_str_t                      url;
    ngx_table_elt_t               *location;
    ngx_http_sessions_ctx_t       *ctx;
    ngx_http_sessions_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sessions_module);
    if (slcf->store == NULL || slcf->require.len == 0) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_sessions_loaded(r);
    if (ctx == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sessions: no session loaded before the access phase");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* With sessions_on_error pass, a protected location still refuses:
     * an outage must neither let anyone in nor log everyone out. */
    if (ngx_http_sessions_failed(ctx)) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (ngx_http_sessions_holds(ctx->session, (char *) slcf->require.data)) {
        return NGX_OK;
    }

    if (slcf->redirect == NULL) {
        return NGX_HTTP_UNAUTHORIZED;
    }

    if (ngx_http_complex_value(r, slcf->redirect, &url) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_clear_location(r);

    location = ngx_list_push(&r->headers_out.headers);
    if (location == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    location->hash = 1;
#if (nginx_version >= 1023000)
    location->next = NULL;
#endif
    ngx_str_set(&location->key, "Location");
    location->value = url;
    r->headers_out.location = location;

    return NGX_HTTP_MOVED_TEMPORARILY;
}


/* ---- Set-Cookie of a renewal -------------------------------------------- */

static ngx_int_t
ngx_http_sessions_response_sets(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash != 0
            && h[i].key.len == sizeof("Set-Cookie") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Set-Cookie",
                               h[i].key.len) == 0
            && h[i].value.len > name->len
            && ngx_strncmp(h[i].value.data, name->data, name->len) == 0
            && h[i].value.data[name->len] == '=')
        {
            return 1;
        }
    }
}


static ngx_int_t
ngx_http_sessions_header_filter(ngx_http_request_t *r)
{
    size_t                    i, n, len;
    const char               *line;
    ngx_table_elt_t          *h;
    ngx_http_sessions_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sessions_module);

    if (ctx == NULL || r != r->main || !ctx->finished || ctx->cookies_sent
        || ctx->touch_rc != SESS_OK
        || ngx_http_sessions_response_sets(r, &ctx->cookie_name))
    {
        return ngx_http_next_header_filter(r);
    }

    ctx->cookies_sent = 1;
    n = sess_request_set_cookie_count(ctx->req);

    for (i = 0; i < n; i++) {
        line = sess_request_set_cookie(ctx->req, i, &len);

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        ngx_str_set(&h->key, "Set-Cookie");
        h->value.data = ngx_pnalloc(r->pool, len);
        if (h->value.data == NULL) {
            return NGX_ERROR;
        }
        ngx_memcpy(h->value.data, line, len);
        h->value.len = len;
    }

    return ngx_http_next_header_filter(r);
}


/* ---- Variables ---------------------------------------------------------- */

static void
ngx_http_sessions_set_text(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    v->data = data;
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
}


/* valid / new / expired / tampered / malformed / error. */
static ngx_int_t
ngx_http_sessions_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char               *name;
    ngx_http_sessions_ctx_t  *ctx;

    ctx = ngx_http_sessions_loaded(r);
    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (ctx->rc == SESS_E_HEADER_TOO_LARGE) {
        name = "malformed";

    } else if (ctx->rc != SESS_OK) {
        name = "error";

    } else {
        switch (sess_session_status(ctx->session)) {
        case SESS_STATUS_VALID:
            name = "valid";
            break;
        case SESS_STATUS_EXPIRED:
        case SESS_STATUS_UNKNOWN_ID:    /* authentic, but its record is gone */
            name = "expired";
            break;
        case SESS_STATUS_TAMPERED:
        case SESS_STATUS_UNKNOWN_KEY:   /* sealed with a secret we lack */
            name = "tampered";
            break;
        case SESS_STATUS_MALFORMED:
            name = "malformed";
            break;
        default:
            name = "new";
        }
    }

    ngx_http_sessions_set_text(v, (u_char *) name, ngx_strlen(name));
    return NGX_OK;
}


static ngx_int_t
ngx_http_sessions_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char               *id;
    ngx_http_sessions_ctx_t  *ctx;

    ctx = ngx_http_sessions_loaded(r);
    if (ctx == NULL || ctx->session == NULL
        || sess_session_status(ctx->session) != SESS_STATUS_VALID)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    id = sess_session_id(ctx->session);
    ngx_http_sessions_set_text(v, (u_char *) id, ngx_strlen(id));
    return NGX_OK;
}


/* A CSRF token of the valid session: the one minted at load (sessions_csrf
 * on), else a fresh one from a secret the session already holds, else
 * empty. Outside sessions_csrf nginx never creates the secret (it would
 * have to save the session): the application or a sessions_csrf location
 * does. */
static ngx_int_t
ngx_http_sessions_csrf_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    int                       was_modified;
    size_t                    len;
    u_char                   *copy;
    const char               *token;
    ngx_http_sessions_ctx_t  *ctx;

    ctx = ngx_http_sessions_loaded(r);
    if (ctx == NULL || ctx->session == NULL || ctx->csrf_unsaved
        || sess_session_status(ctx->session) != SESS_STATUS_VALID)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    if (ctx->csrf_len) {
        ngx_http_sessions_set_text(v, ctx->csrf_token, ctx->csrf_len);
        return NGX_OK;
    }

    if (ctx->shared != NULL) {
        /* A cached session is shared: never create its secret in memory.
         * One cached where a token was minted has it saved. */
        if (!ctx->shared->csrf) {
            v->not_found = 1;
            return NGX_OK;
        }

        was_modified = 1;

    } else {
        was_modified = sess_session_is_modified(ctx->session);

        if (was_modified && !ctx->finished) {
            /* A new secret would not show: do not risk an unsaved one. */
            v->not_found = 1;
            return NGX_OK;
        }
    }

    if (sess_csrf_token(ctx->session, &token, &len) != SESS_OK) {
        /* After a touch's finish, when the secret would be new. */
        v->not_found = 1;
        return NGX_OK;
    }

    if (!was_modified && sess_session_is_modified(ctx->session)) {
        /* The secret was created just now, in this request's copy only:
         * nothing saves it, so no token of it would verify. */
        ctx->csrf_unsaved = 1;
        v->not_found = 1;
        return NGX_OK;
    }

    copy = ngx_pnalloc(r->pool, len);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(copy, token, len);
    ngx_http_sessions_set_text(v, copy, len);
    return NGX_OK;
}


/* JSON from the library, copied into the request's pool. */
static ngx_int_t
ngx_http_sessions_json(ngx_http_request_t *r, sess_session *s,
    const char *key, ngx_http_variable_value_t *v)
{
    char    *json;
    size_t   len;
    u_char  *copy;

    if (sess_get_json(s, key, &json, &len) != SESS_OK) {
        v->not_found = 1;
        return NGX_OK;
    }

    copy = ngx_pnalloc(r->pool, len);
    if (copy != NULL) {
        ngx_memcpy(copy, json, len);
    }

    sess_free(json);

    if (copy == NULL) {
        return NGX_ERROR;
    }

    ngx_http_sessions_set_text(v, copy, len);
    return NGX_OK;
}


/* $session_KEY: strings as they are, numbers and booleans as text, bytes
 * in base64, arrays and maps as JSON. A string holding a control character
 * is given as a JSON string literal instead, so that no value can end a
 * header line it is put in. */
static ngx_int_t
ngx_http_sessions_value_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *name = (ngx_str_t *) data;

    u_char                   *p;
    size_t                    i;
    ngx_str_t                 src, dst;
    sess_value                value;
    ngx_http_sessions_ctx_t  *ctx;
    u_char                    key[256];

    ctx = ngx_http_sessions_loaded(r);
    if (ctx == NULL || ctx->session == NULL
        || name->len <= sizeof("session_") - 1
        || name->len - (sizeof("session_") - 1) >= sizeof(key))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_cpystrn(key, name->data + sizeof("session_") - 1,
                name->len - (sizeof("session_") - 1) + 1);

    if (sess_get(ctx->session, (char *) key, &value) != SESS_OK) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (value.type) {

    case SESS_TYPE_NIL:
        ngx_http_sessions_set_text(v, (u_char *) "", 0);
        return NGX_OK;

    case SESS_TYPE_BOOL:
        if (value.boolean) {
            ngx_http_sessions_set_text(v, (u_char *) "true", 4);
        } else {
            ngx_http_sessions_set_text(v, (u_char *) "false", 5);
        }
        return NGX_OK;

    case SESS_TYPE_INT:
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }
        ngx_http_sessions_set_text(v, p,
                                   ngx_sprintf(p, "%L", value.integer) - p);
        return NGX_OK;

    case SESS_TYPE_STRING:
        for (i = 0; i < value.len; i++) {
            if ((u_char) value.data[i] < 0x20 || value.data[i] == 0x7f) {
                return ngx_http_sessions_json(r, ctx->session, (char *) key, v);
            }
        }
        /* Borrowed: the session does not change after loading. */
        ngx_http_sessions_set_text(v, (u_char *) value.data, value.len);
        return NGX_OK;

    case SESS_TYPE_BYTES:
        src.data = (u_char *) value.data;
        src.len = value.len;
        dst.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(src.len));
        if (dst.data == NULL) {
            return NGX_ERROR;
        }
        ngx_encode_base64(&dst, &src);
        ngx_http_sessions_set_text(v, dst.data, dst.len);
        return NGX_OK;

    default:  /* doubles in their shortest exact form, arrays, maps */
        return ngx_http_sessions_json(r, ctx->session, (char *) key, v);
    }
}


static ngx_http_variable_t  ngx_http_sessions_vars[] = {

    { ngx_string("session_id"), NULL, ngx_http_sessions_id_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("session_status"), NULL, ngx_http_sessions_status_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("session_csrf_token"), NULL, ngx_http_sessions_csrf_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("session_"), NULL, ngx_http_sessions_value_variable,
      0, NGX_HTTP_VAR_PREFIX|NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_sessions_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    if (sess_version_number() / 10000 != SESS_VERSION_MAJOR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sessions: libsessions %s is loaded, but this "
                           "module was built against %s",
                           sess_version_string(), SESS_VERSION_STRING);
        return NGX_ERROR;
    }

    for (v = ngx_http_sessions_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sessions_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_sessions_rewrite_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_sessions_access_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_sessions_header_filter;

    return NGX_OK;
}
