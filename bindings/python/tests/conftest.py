import os
import sys

# The package from this folder, the library from LIBSESSIONS_PATH (set by
# the test command to the freshly built one).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

SECRET = "python-test-secret-python-test-secret!"

# Absolute, so that child interpreters started elsewhere find it too.
if os.environ.get("LIBSESSIONS_PATH"):
    os.environ["LIBSESSIONS_PATH"] = os.path.abspath(os.environ["LIBSESSIONS_PATH"])
