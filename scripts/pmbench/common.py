"""Paths, suite-wide constants, logging and the apt-get helper."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent.parent   # the source tree
SCRIPT = Path(__file__).resolve().parent.parent / "bench"  # scripts/bench itself
FULL_SCALE, QUICK_SCALE = 1.0, 0.01
REAL_QUICK_SCALE = 0.03
FULL_TIMEOUT, QUICK_TIMEOUT = 120, 30
GNU_TIME = "/usr/bin/time"
DEBIAN_PYTHON = "/usr/bin/python3"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def can_install():
    """True when this process may run apt-get (root, and apt-get exists)."""
    return os.geteuid() == 0 and bool(shutil.which("apt-get"))


def apt_install(pkgs, recommends=False):
    """apt-get install -y pkgs (non-interactive; apt-get update and a retry if
    the first attempt fails). Returns True when the last attempt succeeded.
    The caller checks can_install() first and logs what it installs."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q"] + ([] if recommends else
                                               ["--no-install-recommends"]) + list(pkgs)
    if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode == 0:
        return True
    subprocess.run(["apt-get", "update", "-q"], env=env, stdout=sys.stderr)
    return subprocess.run(cmd, env=env, stdout=sys.stderr).returncode == 0
