"""Stand-in for ansible-test's get-pip bootstrap, which it downloads from a host this CI cannot reach.

ansible-test runs `python get-pip.py [--no-setuptools] [--no-wheel] pip==X` inside a fresh venv. We do the same
from PyPI-only sources: ensurepip from the standard library, then pip installs the requested pip version.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
packages = [a for a in sys.argv[1:] if not a.startswith("--no-")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *packages])
