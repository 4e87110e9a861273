"""A PEP 517 build backend in the standard library only: the package is pure
Python, so its wheel is the `sessions` folder plus the .dist-info metadata.
(setuptools would need `wheel`, which pip downloads unless it is installed.)"""
import base64
import hashlib
import os
import zipfile

NAME, VERSION = "sessions", "0.4.0"
HERE = os.path.dirname(os.path.abspath(__file__))
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
METADATA = (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
            "Summary: HTTP sessions over libsessions (ctypes), with WSGI and Flask adapters\n"
            "Requires-Python: >=3.9\n")
WHEEL = "Wheel-Version: 1.0\nGenerator: sessions build_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _files():
    package = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name), "rb") as f:
                yield f"{NAME}/{name}", f.read()


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(target, exist_ok=True)
    for name, text in (("METADATA", METADATA), ("WHEEL", WHEEL)):
        with open(os.path.join(target, name), "w") as f:
            f.write(text)
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    filename = f"{NAME}-{VERSION}-py3-none-any.whl"
    entries = list(_files()) + [(f"{DIST_INFO}/METADATA", METADATA.encode()),
                                (f"{DIST_INFO}/WHEEL", WHEEL.encode())]
    record = "\n".join(_record_line(p, d) for p, d in entries) + f"\n{DIST_INFO}/RECORD,,\n"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w",
                         zipfile.ZIP_DEFLATED) as wheel:
        for path, data in entries:
            wheel.writestr(path, data)
        wheel.writestr(f"{DIST_INFO}/RECORD", record)
    return filename
