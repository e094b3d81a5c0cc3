"""pmreport.profile - the sampling heap profile of schema 2 reports.

A report's "profile" object holds allocation sites (stacks of up to 32
frames, innermost first) with estimated live bytes at the heap's peak and at
the report, and allocated bytes; "modules" maps frames to the files they
came from. This module reads them, names the frames (addr2line on the
module files when they have debug information, else the report's own
symbol, else module+offset), merges the sites of many reports, and writes
them as a flame graph (standalone SVG), as a gperftools heap profile that
google-pprof reads, and as text.
"""

import collections
import os
import re
import shutil
import struct
import subprocess
import zlib
from xml.sax.saxutils import escape

from .util import cnt, obj, human, count, pct

FIGURES = ("peak_bytes", "peak_blocks", "exit_bytes", "exit_blocks", "alloc_bytes", "alloc_blocks")
OF = ("peak", "exit", "alloc")
OF_WHAT = {"peak": "estimated live bytes at the peak of the heap",
           "exit": "estimated live bytes at the report (exit)",
           "alloc": "estimated bytes allocated over the run"}


def _hex(v):
    """an address from a report: "0x..." string (or an integer); None if neither"""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if v >= 0 else None
    if isinstance(v, str):
        try:
            return int(v, 16) if v.lower().startswith("0x") else int(v)
        except ValueError:
            return None
    return None


class Module:
    __slots__ = ("path", "base", "end")

    def __init__(self, path, base, end):
        self.path, self.base, self.end = path, base, end


class Frame:
    """One frame: key is what identifies it across processes, (module path,
    offset from the module's base) or ("", address) when the module is not
    known."""
    __slots__ = ("address", "path", "offset", "symbol", "key")

    def __init__(self, address, path, offset, symbol):
        self.address, self.path, self.offset, self.symbol = address, path, offset, symbol
        self.key = (path, offset) if path else ("", address or 0)


class Profile:
    def __init__(self, p):
        self.rate = cnt(p.get("rate_bytes"))
        self.samples = cnt(p.get("samples"))
        self.stacks = cnt(p.get("stacks"))
        self.dropped = cnt(p.get("stacks_dropped"))
        self.allocated = cnt(p.get("allocated_bytes"))
        self.peak_bytes = cnt(obj(p.get("peak")).get("bytes"))
        self.peak_ms = cnt(obj(p.get("peak")).get("time_ms"))
        self.exit_bytes = cnt(obj(p.get("exit")).get("bytes"))
        self.exit_ms = cnt(obj(p.get("exit")).get("time_ms"))
        self.modules = {}
        mods = p.get("modules") if isinstance(p.get("modules"), list) else []
        for i, m in enumerate(mods):
            if not isinstance(m, dict) or not isinstance(m.get("path"), str):
                continue
            mid = m.get("id") if isinstance(m.get("id"), int) and not isinstance(m.get("id"), bool) else i
            self.modules[mid] = Module(m["path"], _hex(m.get("base")), _hex(m.get("end")))
        self.sites = []
        for s in p.get("sites") if isinstance(p.get("sites"), list) else []:
            if not isinstance(s, dict) or not isinstance(s.get("frames"), list):
                continue
            frames = []
            for f in s["frames"][:64]:
                if not isinstance(f, dict):
                    continue
                addr = _hex(f.get("address"))
                mid = f.get("module")
                mod = self.modules.get(mid) if isinstance(mid, int) and not isinstance(mid, bool) else None
                off = _hex(f.get("offset"))
                if mod is not None and off is None and addr is not None and mod.base is not None:
                    off = addr - mod.base
                sym = f.get("symbol") if isinstance(f.get("symbol"), str) and f.get("symbol") else None
                frames.append(Frame(addr, mod.path if mod is not None and off is not None else "",
                                    off, sym))
            if not frames:
                continue
            self.sites.append((frames, {k: cnt(s.get(k)) for k in FIGURES}))

    def total(self, of):
        return {"peak": self.peak_bytes, "exit": self.exit_bytes, "alloc": self.allocated}[of]


def parse(rep):
    """The Profile of a report (the object inside "poolmalloc"), or None
    when it has none (schema 1, or the profiler was off)."""
    p = rep.get("profile")
    if not isinstance(p, dict):
        return None
    try:
        return Profile(p)
    except Exception:       # a profile too far from the documented shape
        return None


RSS_PARTS = ("pool_in_use", "pool_free_resident", "jemalloc_resident", "metadata", "other")


def parse_rss_account(rep):
    """{"exit": {...}, "peak": {...}} with integer parts, or None"""
    r = rep.get("rss_account")
    if not isinstance(r, dict):
        return None
    out = {}
    for when in ("exit", "peak"):
        w = obj(r.get(when))
        if w:
            out[when] = {k: cnt(w.get(k)) for k in ("rss",) + RSS_PARTS}
    return out or None


# ---------------------------------------------------------------- names

def first_load_vaddr(path):
    """The page-aligned p_vaddr of the first PT_LOAD of an ELF file (what
    the module's base, dladdr's dli_fbase, corresponds to): 0 for a PIE or a
    shared object as Debian builds them, 0x400000 for a non-PIE x86-64
    executable. None if the file is not a readable ELF file."""
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF":
                return None
            is64 = ident[4] == 2
            end = "<" if ident[5] == 1 else ">"
            if is64:
                phoff, = struct.unpack_from(end + "Q", ident, 32)
                phentsize, phnum = struct.unpack_from(end + "HH", ident, 54)
            else:
                phoff, = struct.unpack_from(end + "I", ident, 28)
                phentsize, phnum = struct.unpack_from(end + "HH", ident, 42)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return None
    for i in range(phnum):
        ph = table[i * phentsize:(i + 1) * phentsize]
        if len(ph) < (56 if is64 else 32):
            break
        ptype, = struct.unpack_from(end + "I", ph, 0)
        if ptype != 1:              # PT_LOAD
            continue
        vaddr, = struct.unpack_from(end + ("Q" if is64 else "I"), ph, 16 if is64 else 8)
        return vaddr & ~0xfff
    return None


_DISCRIMINATOR = re.compile(r"\s*\(discriminator \d+\)$")


class Symbolizer:
    """Names frames. With addr2line (binutils) and the module file on disk,
    each frame becomes its chain of functions (inlined ones first) with
    file:line where the module has debug information; one addr2line process
    per module for all its frames. Else the report's symbol (without its
    +offset), else module+offset, else the address."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.cache = {}        # frame key -> [(function, "file:line" or None)], innermost first
        self.addr2line = None

    def _tool(self):
        if self.addr2line is None:
            self.addr2line = shutil.which("addr2line") or ""
        return self.addr2line

    def prepare(self, frames):
        """Resolves the frames not resolved yet, one addr2line run per module."""
        todo = collections.defaultdict(set)
        for f in frames:
            if f.key in self.cache:
                continue
            self.cache[f.key] = None
            if self.enabled and f.path and f.offset is not None:
                todo[f.path].add(f.offset)
        if not todo or not self._tool():
            return
        for path in sorted(todo):
            real = os.path.realpath(path)
            bias = first_load_vaddr(real)
            if bias is None:
                continue
            offsets = sorted(todo[path])
            # return addresses: look up the call instruction before them
            query = "".join("0x%x\n" % (bias + max(0, o - 1)) for o in offsets)
            try:
                r = subprocess.run([self._tool(), "-e", real, "-a", "-f", "-i", "-C"], input=query,
                                   capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.SubprocessError):
                continue
            if r.returncode != 0:
                continue
            chains, cur = [], None
            for line in r.stdout.splitlines():
                if line.startswith("0x") and re.fullmatch(r"0x[0-9a-fA-F]+", line.strip()):
                    cur = []
                    chains.append(cur)
                elif cur is not None:
                    cur.append(line)
            if len(chains) != len(offsets):
                continue
            for off, lines in zip(offsets, chains):
                chain = []
                for i in range(0, len(lines) - 1, 2):
                    fn, loc = lines[i].strip(), _DISCRIMINATOR.sub("", lines[i + 1].strip())
                    if fn in ("", "??"):
                        continue
                    chain.append((fn, None if loc.startswith("??") else loc))
                if chain:
                    self.cache[(path, off)] = chain

    def chain(self, f):
        """[(function, location or None)], innermost first: addr2line's
        answer when it has file:line (debug information), else the report's
        symbol, else addr2line's function name (symbol table), else
        module+offset"""
        got = self.cache.get(f.key)
        if got and any(loc for _, loc in got):
            return got          # debug information: file:line
        if f.symbol:
            return [(re.sub(r"\+0x[0-9a-fA-F]+$", "", f.symbol), None)]
        if got:
            return got          # a name from the module's symbol table
        if f.path:
            return [("%s+0x%x" % (os.path.basename(f.path), f.offset), None)]
        return [("0x%x" % (f.address or 0), None)]

    def names(self, f, full=False):
        """display names of the frame's functions, innermost first:
        "function (file.c:12)" (full: the file's whole path)"""
        out = []
        for fn, loc in self.chain(f):
            if loc:
                out.append("%s (%s)" % (fn, loc if full else os.path.basename(loc)))
            else:
                out.append(fn)
        return out


SYMBOLIZER = Symbolizer()

# Frames that only wrap the allocator: skipped when a site is named by its
# first frames.
WRAPPERS = re.compile(
    r"^(malloc|calloc|realloc|reallocarray|free|strdup|strndup|memalign|posix_memalign|"
    r"aligned_alloc|valloc|pvalloc|__libc_\w+|"
    r"_?PyMem_\w+|_?PyObject_(Malloc|Calloc|Realloc|GC_\w+|New\w*|Init\w*)|pymalloc_\w+|"
    r"_PyObject_GC_\w+|gc_alloc\w*|_PyType_AllocNoTrack|PyType_GenericAlloc|"
    r"z(try)?(malloc|calloc|realloc)\w*|x(malloc|calloc|realloc|zalloc|strdup|strndup|memdup)\w*|"
    r"g_(try_)?(malloc|malloc0|realloc|new|new0)\w*|g_slice_alloc\w*|g_strdup\w*|"
    r"operator new.*|_Zn[wa]m\w*|__gnu_cxx::new_allocator.*|std::__new_allocator.*|"
    r"std::allocator.*|std::allocator_traits.*|__cxa_allocate_exception)$")


def is_wrapper(name, path=""):
    if path and "libpoolmalloc" in os.path.basename(path):
        return True
    base = name.split(" (", 1)[0]
    return bool(WRAPPERS.match(base))


def short_stack(frames, sym=None, n=3):
    """the first n functions of a site that are not allocator wrappers,
    innermost first (all of them if every frame is a wrapper)"""
    sym = sym or SYMBOLIZER
    names = [(nm, f.path) for f in frames for nm in sym.names(f)]
    own = [nm for nm, path in names if not is_wrapper(nm, path)]
    return (own or [nm for nm, _ in names])[:n]


# ---------------------------------------------------------------- merging

def merged_sites(procs):
    """The sites of every process with a profile, merged by stack (module
    and offset of each frame): a list of dicts with "frames" (one
    process's Frame list), the FIGURES summed, and "programs" (Counter of
    program names). In a deterministic order (by stack key)."""
    by = {}
    for p in procs:
        pr = getattr(p, "profile", None)
        if pr is None:
            continue
        for frames, fig in pr.sites:
            key = tuple(f.key for f in frames)
            m = by.get(key)
            if m is None:
                m = by[key] = {"key": key, "frames": frames, "programs": collections.Counter(),
                               "pids": []}
                m.update({k: 0 for k in FIGURES})
            for k in FIGURES:
                m[k] += fig[k]
            m["programs"][p.name] += 1
            m["pids"].append(p.pid)
    return [by[k] for k in sorted(by, key=lambda k: repr(k))]


def profiled(procs):
    return [p for p in procs if getattr(p, "profile", None) is not None]


def prepare_names(sites, sym=None):
    (sym or SYMBOLIZER).prepare([f for s in sites for f in s["frames"]])


def top_sites(sites, of, n):
    k = of + "_bytes"
    return sorted([s for s in sites if s[k]], key=lambda s: (-s[k], repr(s["key"])))[:n]


# ---------------------------------------------------------------- flame graph

def _color(name):
    h = zlib.crc32(name.encode("utf-8", "replace"))
    v1, v2, v3 = (h & 0xff) / 255.0, ((h >> 8) & 0xff) / 255.0, ((h >> 16) & 0xff) / 255.0
    return "rgb(%d,%d,%d)" % (205 + int(50 * v3), int(230 * v1), int(55 * v2))


def flame_svg(procs, of="peak", sym=None, title=None, width=1200):
    """A flame graph of the merged sites of procs as one standalone SVG
    document (a string): the root at the bottom, each frame above its
    caller, widths proportional to the chosen figure (peak, exit or alloc
    bytes). Hover titles give the name, bytes and share."""
    sym = sym or SYMBOLIZER
    sites = merged_sites(procs)
    prepare_names(sites, sym)
    key = of + "_bytes"
    root = {"name": "all", "value": 0, "children": {}}
    for s in sites:
        v = s[key]
        if not v:
            continue
        root["value"] += v
        node = root
        # root first: the outermost frame, and in a frame the outer function
        # before the inlined ones
        path = [nm for f in reversed(s["frames"]) for nm in reversed(sym.names(f))]
        for nm in path:
            ch = node["children"].get(nm)
            if ch is None:
                ch = node["children"][nm] = {"name": nm, "value": 0, "children": {}}
            ch["value"] += v
            node = ch
    total = root["value"]
    fh, pad, top, bottom = 17, 10, 50, 30
    rects = []
    depth_max = [0]
    usable = width - 2 * pad

    def lay(node, x, depth):
        depth_max[0] = max(depth_max[0], depth)
        rects.append((node, x, depth))
        cx = x
        for nm in sorted(node["children"]):
            ch = node["children"][nm]
            if usable * ch["value"] / total >= 0.5:
                lay(ch, cx, depth + 1)
            cx += ch["value"]

    n = len(profiled(procs))
    if title is None:
        title = "poolmalloc heap profile: %s" % OF_WHAT[of]
    if total:
        lay(root, 0, 0)
    height = top + (depth_max[0] + 1) * fh + bottom
    out = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n',
           '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" '
           'viewBox="0 0 %d %d">\n' % (width, height, width, height),
           '<style>text { font-family: DejaVu Sans Mono, monospace; font-size: 12px; fill: #000; }'
           ' .t { font-size: 17px; } .s { font-size: 12px; fill: #444; }'
           ' rect.f:hover { stroke: #000; stroke-width: 0.5; }</style>\n',
           '<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f0"/>\n' % (width, height),
           '<text class="t" x="%d" y="24" text-anchor="middle">%s</text>\n'
           % (width // 2, escape(title)),
           '<text class="s" x="%d" y="42" text-anchor="middle">%s</text>\n'
           % (width // 2, escape("%s (%s B) from %d process%s with a profile; hover a frame for "
                                 "its bytes" % (human(total), count(total), n, "" if n == 1 else "es")))]
    if not total:
        out.append('<text x="%d" y="%d" text-anchor="middle">no sampled bytes</text>\n'
                   % (width // 2, top + fh))
    char_w = 7.2
    for node, x, depth in rects:
        rx = pad + usable * x / total
        rw = usable * node["value"] / total
        ry = height - bottom - (depth + 1) * fh
        share = pct(node["value"], total)
        tip = "%s\n%s (%s B), %.2f%%" % (node["name"], human(node["value"]), count(node["value"]), share)
        color = "rgb(230,230,230)" if depth == 0 else _color(node["name"])
        out.append('<g><title>%s</title><rect class="f" x="%.2f" y="%d" width="%.2f" height="%d" '
                   'fill="%s" rx="2" ry="2"/>' % (escape(tip), rx, ry, rw, fh - 1, color))
        chars = int((rw - 6) / char_w)
        if chars >= 3:
            label = node["name"] if depth else "all (%s)" % human(node["value"])
            if len(label) > chars:
                label = label[:chars - 2] + ".."
            out.append('<text x="%.2f" y="%d">%s</text>' % (rx + 3, ry + fh - 5, escape(label)))
        out.append("</g>\n")
    out.append("</svg>\n")
    return "".join(out)


# ---------------------------------------------------------------- pprof

PPROF_SPACING = 1 << 36     # 64 GiB between the modules' synthetic bases


def pprof_text(procs, of="exit"):
    """The merged sites as gperftools' legacy heap profile text: a header
    "heap profile: N: B [N2: B2] @ heapprofile" (heapprofile: google-pprof
    takes the figures as they are, they are already scaled estimates), a
    line per stack, then MAPPED_LIBRARIES in /proc/self/maps form. In-use
    figures are the peak or exit ones, allocated the alloc ones. Each module
    (file) gets one synthetic base, the same in every process, so that
    reports of many processes (each with its own load addresses) add up;
    addresses are base + offset."""
    sites = merged_sites(procs)
    paths = sorted({f.path for s in sites for f in s["frames"] if f.path})
    sizes = collections.defaultdict(int)
    for p in profiled(procs):
        for m in p.profile.modules.values():
            if m.base is not None and m.end is not None and m.end > m.base:
                sizes[m.path] = max(sizes[m.path], m.end - m.base)
    for s in sites:
        for f in s["frames"]:
            if f.path:
                sizes[f.path] = max(sizes[f.path], f.offset + 1)
    base = {path: (i + 1) * PPROF_SPACING for i, path in enumerate(paths)}
    stacks = collections.OrderedDict()
    for s in sites:
        addrs = " ".join("0x%x" % (base[f.path] + f.offset if f.path else (f.address or 0))
                         for f in s["frames"])
        n1, b1 = s[of + "_blocks"], s[of + "_bytes"]
        n2, b2 = s["alloc_blocks"], s["alloc_bytes"]
        if not (n1 or b1 or n2 or b2):
            continue
        t = stacks.setdefault(addrs, [0, 0, 0, 0])
        t[0] += n1
        t[1] += b1
        t[2] += n2
        t[3] += b2
    tot = [sum(v[i] for v in stacks.values()) for i in range(4)]
    out = ["heap profile: %6d: %8d [%6d: %8d] @ heapprofile\n" % tuple(tot)]
    for addrs, v in stacks.items():
        out.append("%6d: %8d [%6d: %8d] @ %s\n" % (v[0], v[1], v[2], v[3], addrs))
    out.append("\nMAPPED_LIBRARIES:\n")
    for path in paths:
        real = os.path.realpath(path) if os.path.exists(path) else path
        size = (sizes[path] + 0xfff) & ~0xfff
        out.append("%012x-%012x r-xp 00000000 00:00 0          %s\n"
                   % (base[path], base[path] + size, real))
    return "".join(out), {"inuse_blocks": tot[0], "inuse_bytes": tot[1],
                          "alloc_blocks": tot[2], "alloc_bytes": tot[3]}


# ---------------------------------------------------------------- text

def sites_text(procs, of="peak", n=10, sym=None, max_frames=12):
    sym = sym or SYMBOLIZER
    have = profiled(procs)
    if not have:
        return ("sites: no report has a heap profile (schema 2 with the profiler on); "
                "nothing to show\n")
    sites = merged_sites(procs)
    top = top_sites(sites, of, n)
    prepare_names(top, sym)
    total = sum(p.profile.total(of) for p in have)
    key = of + "_bytes"
    out = ["\ntop %d sites by %s (%s in all, from %d process%s with a profile):\n"
           % (len(top), OF_WHAT[of], human(total), len(have), "" if len(have) == 1 else "es")]
    for i, s in enumerate(top, 1):
        blocks = s[of + "_blocks"]
        progs = ", ".join("%s ×%d" % (nm, k) for nm, k in sorted(s["programs"].items(),
                                                                   key=lambda x: (-x[1], x[0]))[:3])
        out.append("  %2d. %10s  %5.1f%%  %s blocks  (%s)\n"
                   % (i, human(s[key]), pct(s[key], total), count(blocks), progs))
        names = [nm for f in s["frames"] for nm in sym.names(f)]
        for nm in names[:max_frames]:
            out.append("        %s\n" % nm)
        if len(names) > max_frames:
            out.append("        … %d more frames\n" % (len(names) - max_frames))
    return "".join(out)


def summary(procs, top=10, sym=None):
    """The profile part of the --json aggregate (only when a report has a
    profile)."""
    sym = sym or SYMBOLIZER
    have = profiled(procs)
    sites = merged_sites(procs)
    out = collections.OrderedDict()
    out["processes"] = len(have)
    for k, f in (("samples", "samples"), ("stacks", "stacks"), ("stacks_dropped", "dropped"),
                 ("allocated_bytes", "allocated"), ("peak_bytes", "peak_bytes"),
                 ("exit_bytes", "exit_bytes")):
        out[k] = sum(getattr(p.profile, f) for p in have)
    out["top_sites"] = collections.OrderedDict()
    for of in OF:
        t = top_sites(sites, of, top)
        prepare_names(t, sym)
        out["top_sites"][of] = [
            collections.OrderedDict(
                [("stack", [nm for f in s["frames"] for nm in sym.names(f)]),
                 ("short", short_stack(s["frames"], sym))]
                + [(k, s[k]) for k in FIGURES]
                + [("programs", dict(sorted(s["programs"].items())))])
            for s in t]
    return out
