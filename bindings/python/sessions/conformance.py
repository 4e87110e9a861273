"""The store conformance kit from Python: what every store must do, run on a
store URI -- a built-in one, or a Python backend registered with
sessions.register_scheme. Uses libsessions_conformance (next to
libsessions, or $LIBSESSIONS_CONFORMANCE_PATH).

    results = sessions.conformance.run("mykv://host", options={"timeout_ms": "300"})
    assert all(outcome != "failed" for check, outcome, detail in results)

    python3 -m sessions.conformance 'pysqlite:///tmp/s.db' --register sqlite3_store:register
"""
import argparse
import ctypes
import importlib
import os
import sys

from ._native import library_path

_OUTCOMES = ("passed", "failed", "skipped")
_REPORT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)


def _load():
    env = os.environ.get("LIBSESSIONS_CONFORMANCE_PATH")
    here = os.path.dirname(os.path.abspath(library_path)) if os.path.sep in library_path else ""
    tried = []
    for path in ([env] if env else []) + [os.path.join(here, "libsessions_conformance.so"),
                                          "libsessions_conformance.so.0"]:
        try:
            kit = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        kit.sess_conformance_run.restype = ctypes.c_int
        kit.sess_conformance_run.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                                             _REPORT, ctypes.c_void_p]
        return kit
    raise ImportError("libsessions_conformance not found; tried:\n  " + "\n  ".join(tried))


def run(uri, options=None):
    """Runs every check on uri; returns [(check, "passed"|"failed"|"skipped",
    detail)]. Takes tens of seconds. No hooks: the checks that stop or pause a
    server are skipped (the C kit takes them)."""
    kit = _load()
    flat = []
    for name, value in (options or {}).items():
        flat += [name.encode(), str(value).encode()]
    array = (ctypes.c_char_p * (len(flat) + 1))(*flat, None)
    results = []

    @_REPORT
    def report(_user, check, outcome, detail):
        results.append((check.decode(), _OUTCOMES[outcome], detail.decode("utf-8", "replace")))
    rc = kit.sess_conformance_run(uri.encode("utf-8"), ctypes.cast(array, ctypes.c_void_p), None,
                                  report, None)
    if rc < 0:
        raise ValueError("sess_conformance_run refused its arguments")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m sessions.conformance",
                                     description="Runs the store conformance kit on a store URI.")
    parser.add_argument("uri")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--register", metavar="MODULE:FUNCTION",
                        help="imports MODULE and calls FUNCTION() first (registers a scheme)")
    args = parser.parse_args(argv)
    if args.register:
        module, _, function = args.register.partition(":")
        getattr(importlib.import_module(module), function or "register")()
    options = dict(item.split("=", 1) for item in args.option)
    failed = 0
    for check, outcome, detail in run(args.uri, options):
        print(f"{check}: {outcome}" + (f": {detail}" if detail else ""))
        failed += outcome == "failed"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
