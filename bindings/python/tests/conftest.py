import os
import sys

# The package from this folder, the library from LIBSESSIONS_PATH (set by
# the test command to the freshly built one).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

SECRET = "python-test-secret-python-test-secret!"
