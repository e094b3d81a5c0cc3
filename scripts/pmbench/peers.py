"""The allocator columns: glibc (no preload), the peer libraries (jemalloc,
mimalloc, tcmalloc) and poolmalloc's own columns (one library, each with its
own environment), and the environment a program under test runs in."""
import datetime
import hashlib
import os
import platform
import subprocess
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from .common import apt_install, can_install, log

PEERS = ["glibc", "jemalloc", "mimalloc", "tcmalloc"]
# poolmalloc's own columns: one library, each with its extra environment; they
# are never peers (best-peer ratios look at PEERS only) and each gets its own
# "÷ best peer" column
POOLMALLOC_COLUMNS = {
    "poolmalloc": {},  # as a user gets it: lifetime routing on (POOLMALLOC_LIFETIME=2)
    "poolmalloc-off": {"POOLMALLOC_LIFETIME": "0"},  # lifetime routing off
    "poolmalloc-lt": {"POOLMALLOC_LIFETIME": "1"},  # routing to jemalloc
    "poolmalloc-lt2": {"POOLMALLOC_LIFETIME": "2"},  # routing to pool pages of their own
    # a report asked for: the profile's sampler on (the cost of asking)
    "poolmalloc-prof": {"POOLMALLOC_STATS": "json", "POOLMALLOC_STATS_FILE": "/dev/null"},
}
# the columns of a run unless --allocators says otherwise (--frag: FRAG_ALLOCATORS)
DEFAULT_ALLOCATORS = PEERS + ["poolmalloc", "poolmalloc-off"]
ALL_ALLOCATORS = PEERS + list(POOLMALLOC_COLUMNS)
# the fragmentation family's columns: routing off, and both destinations
# (poolmalloc itself is POOLMALLOC_LIFETIME=2)
FRAG_ALLOCATORS = PEERS + ["poolmalloc", "poolmalloc-off", "poolmalloc-lt"]
# variables a column sets, dropped from the inherited environment so that a
# column without them really runs without them
COLUMN_VARS = {k for extra in POOLMALLOC_COLUMNS.values() for k in extra}
PEER_LIBS = {  # name: (soname, Debian package)
    "jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
    "mimalloc": ("libmimalloc.so.2", "libmimalloc2.0"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
}


@dataclass
class Preload:
    """What an allocator column puts in the environment of the program under
    test: LD_PRELOAD=lib, then its extra variables (POOLMALLOC_LIFETIME=1)."""
    lib: Path
    env: dict = field(default_factory=dict)


def preload_vars(preload):
    """{variable: value} a column sets ({} for no preload)."""
    if not preload:
        return {}
    return {"LD_PRELOAD": str(preload.lib), **preload.env}


def preload_words(preload):
    """NAME=value words for env(1) and for printed command lines."""
    return [f"{k}={v}" for k, v in preload_vars(preload).items()]


def child_env(extra):
    """This process's environment without LD_PRELOAD and the columns' variables,
    plus extra."""
    env = dict(os.environ)
    for k in {"LD_PRELOAD"} | COLUMN_VARS:
        env.pop(k, None)
    env.update(extra)
    return env


def lib_dirs():
    dirs = []
    for multiarch in (sysconfig.get_config_var("MULTIARCH"), f"{platform.machine()}-linux-gnu"):
        if multiarch:
            dirs.append(Path("/usr/lib") / multiarch)
    return dirs + [Path("/usr/lib64"), Path("/usr/lib"), Path("/usr/local/lib")]


def find_lib(soname):
    for d in lib_dirs():
        if (d / soname).exists():
            return d / soname
    return None


def install_peers(missing):
    """apt-get install the missing peer packages when root; True if it ran OK."""
    pkgs = [PEER_LIBS[n][1] for n in missing]
    line = "apt-get install -y " + " ".join(pkgs)
    if not can_install():
        log(f"bench: peers missing ({', '.join(missing)}); to include them run:\n  sudo {line}")
        return False
    log(f"bench: installing missing peers: {line}")
    return apt_install(pkgs, recommends=True)


def resolve_allocators(wanted, pm_lib, notes):
    """Returns {name: Preload, or None for glibc} for the usable allocators."""
    missing = [n for n in PEER_LIBS if n in wanted and not find_lib(PEER_LIBS[n][0])]
    if missing:
        install_peers(missing)
    allocs = {}
    for name in wanted:
        if name == "glibc":
            allocs[name] = None
        elif name in POOLMALLOC_COLUMNS:
            allocs[name] = Preload(pm_lib, dict(POOLMALLOC_COLUMNS[name]))
        elif find_lib(PEER_LIBS[name][0]):
            allocs[name] = Preload(find_lib(PEER_LIBS[name][0]))
        else:
            notes.append(f"{name}: skipped, {PEER_LIBS[name][0]} not installed "
                         f"(apt-get install -y {PEER_LIBS[name][1]})")
    return allocs


def package_version(pkg):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                             capture_output=True, text=True).stdout
    except OSError:
        return ""
    return out.strip()


def describe_file(path):
    """Path, modification time and hash prefix, to tell builds apart."""
    try:
        data = Path(path).read_bytes()
        when = datetime.datetime.fromtimestamp(Path(path).stat().st_mtime)
    except OSError:
        return str(path)
    digest = hashlib.sha256(data).hexdigest()[:12]
    return f"{path} (built {when:%Y-%m-%d %H:%M}, sha256 {digest})"


def allocator_versions(allocs):
    versions = {}
    for name, pre in allocs.items():
        if name == "glibc":
            versions[name] = "glibc " + (platform.libc_ver()[1] or "?")
        elif name in POOLMALLOC_COLUMNS:
            versions[name] = describe_file(pre.lib) + "".join(
                f" with {w}" for w in preload_words(pre)[1:])
        else:
            versions[name] = f"{pre.lib} ({package_version(PEER_LIBS[name][1]) or '?'})"
    return versions
