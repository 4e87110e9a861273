"""The package builds into a wheel with the standard library alone (what
`pip install bindings/python` runs, offline), and that wheel works."""
import os
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def test_the_wheel_holds_the_package_and_imports(tmp_path):
    sys.path.insert(0, os.path.join(HERE, ".."))
    try:
        import build_backend
    finally:
        sys.path.pop(0)
    name = build_backend.build_wheel(str(tmp_path))
    wheel = tmp_path / name
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {"sessions/__init__.py", "sessions/_native.py", "sessions/core.py", "sessions/wsgi.py",
            "sessions/flask.py", "sessions/errors.py"} <= names
    assert "sessions-0.4.0.dist-info/RECORD" in names
    # A wheel of pure Python is importable as it is: check it in a clean interpreter.
    out = subprocess.run(
        [sys.executable, "-c",
         f"import sys; sys.path.insert(0, {str(wheel)!r}); import sessions, sessions.wsgi; "
         "print(sessions.__file__, sessions.library_version)"],
        capture_output=True, text=True, check=True, cwd=str(tmp_path))
    assert str(wheel) in out.stdout and "0.4.0" in out.stdout
