"""A libsessions store written in Python on the standard library's sqlite3,
against the public API only (sessions.Backend, sessions.register_scheme).

    import sqlite3_store, sessions
    sqlite3_store.register()                      # the "pysqlite" scheme
    store = sessions.Store("pysqlite:///var/lib/app/sessions.db", secrets=[SECRET])

One connection per thread (sqlite3 connections are not shared), WAL so that
readers do not wait for the writer, expiry kept in an indexed column and
honoured on load, and a move that is one transaction. (The library's own
sqlite: store does the same in C++; this one shows how to write a store.)
"""
import sqlite3
import threading
import time

import sessions

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  key TEXT PRIMARY KEY,
  data BLOB NOT NULL,
  expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
"""


class Sqlite3Backend(sessions.Backend):
    def __init__(self, path, busy_timeout=5.0):
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections = []
        self._lock = threading.Lock()

    def _db(self):
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def start(self):
        self._db().executescript(SCHEMA)  # dialled at open, not by a check

    def load(self, key):
        row = self._db().execute("SELECT data FROM sessions WHERE key = ? AND expires_at > ?",
                                 (key, time.time())).fetchone()
        return None if row is None else bytes(row[0])

    def save(self, key, data, ttl):
        self._db().execute(
            "INSERT INTO sessions (key, data, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            (key, data, time.time() + ttl))

    def delete(self, key):
        self._db().execute("DELETE FROM sessions WHERE key = ?", (key,))

    def move(self, old_key, new_key, data, ttl):
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            self.save(new_key, data, ttl)
            self.delete(old_key)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def collect(self):
        """Deletes expired rows; call it now and then (loads skip them anyway)."""
        return self._db().execute("DELETE FROM sessions WHERE expires_at <= ?",
                                  (time.time(),)).rowcount

    def close(self):
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()


def open_backend(uri, options):
    """pysqlite:///path/to.db?busy_timeout=5"""
    if not uri.lower().startswith("pysqlite://"):
        raise ValueError(f"{uri}: expected pysqlite:///path")
    path = uri[len("pysqlite://"):].split("?", 1)[0]
    if not path:
        raise ValueError("pysqlite: URI names no database file")
    busy_timeout = 5.0
    for name, value in options:
        if name != "busy_timeout":
            raise ValueError(f"pysqlite: unknown option {name}")
        busy_timeout = float(value)
    return Sqlite3Backend(path, busy_timeout)


def register():
    sessions.register_scheme("pysqlite", open_backend, options=["busy_timeout"])
