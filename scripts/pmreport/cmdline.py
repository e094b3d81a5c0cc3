"""pmreport.cmdline - command lines short enough for a table column, that
still tell the rows apart.

A command line that fits is shown whole. A longer one keeps its program
(the first word; its directory goes if the program alone takes more than a
third of the width) and, of its arguments, first those that differ between
the rows of the same program, preferring source files (for a compiler, the
file it compiles), then the last differing ones; what is left out is shown
as "…". Arguments common to all rows of the program are left out before any
that differ. A program with a single row keeps its last arguments.
"""

import os

ELLIPSIS = "\u2026"
SOURCE_EXT = (".c", ".cc", ".cpp", ".cxx", ".c++", ".C", ".m", ".mm", ".f", ".f90", ".for",
              ".rs", ".go", ".java", ".py", ".js", ".ts", ".rb", ".pl", ".d", ".swift", ".zig",
              ".adb", ".ads", ".hs", ".ml", ".cs", ".kt", ".scala", ".i", ".ii")


def _is_source(tok):
    return (not tok.startswith("-")) and tok.endswith(SOURCE_EXT)


def _render(head, tokens, keep):
    """keep: {index: text shown for that argument}"""
    out = [head]
    prev = -1
    for i in sorted(keep):
        if i != prev + 1:
            out.append(ELLIPSIS)
        out.append(keep[i])
        prev = i
    if prev != len(tokens) - 1:
        out.append(ELLIPSIS)
    return " ".join(out)


def _forms(tok):
    """the ways to show an argument, longest first: whole, then a path
    without its directories"""
    yield tok
    if "/" in tok.rstrip("/") and not tok.startswith("-"):
        yield ELLIPSIS + "/" + tok.rstrip("/").rsplit("/", 1)[1]


def shorten(cmds, width=60):
    """{command line: shown text} for the command lines cmds (the rows of a
    table), each shown text at most width characters where the program name
    alone allows it."""
    groups = {}
    for c in cmds:
        words = c.split()
        groups.setdefault(words[0] if words else "", []).append(c)
    shown = {}
    for c in cmds:
        if c in shown:
            continue
        if len(c) <= width:
            shown[c] = c
            continue
        words = c.split()
        head, tokens = words[0], words[1:]
        if len(head) > width // 3:
            head = os.path.basename(head) or head
        others = [o.split()[1:] for o in groups[words[0]] if o != c]
        if others:
            common = set.intersection(*(set(o) for o in others))
            differ = [i for i, t in enumerate(tokens) if t not in common]
        else:
            differ = []
        if not differ:      # one row of this program, or nothing differs: its last arguments
            differ = list(range(len(tokens)))
        # the order in which arguments get a place: differing source files
        # (the first one first: a compiler's input comes before the -dumpbase
        # copies of its name), then the other differing ones, last first
        src = [i for i in differ if _is_source(tokens[i])]
        order = src + [i for i in reversed(differ) if i not in src]
        keep = {}
        for i in order:
            if tokens[i] in keep.values():
                continue
            for form in _forms(tokens[i]):
                trial = dict(keep)
                trial[i] = form
                # an option's value goes with a short option ("-o FILE")
                if i > 0 and tokens[i - 1].startswith("-") and len(tokens[i - 1]) <= 3 \
                        and not tokens[i].startswith("-"):
                    trial[i - 1] = tokens[i - 1]
                if len(_render(head, tokens, trial)) <= width:
                    keep = trial
                    break
        text = _render(head, tokens, keep)
        if len(text) > width:          # the program name alone is too long
            text = text[:width - 1] + ELLIPSIS
        shown[c] = text
    return shown
