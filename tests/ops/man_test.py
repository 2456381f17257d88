#!/usr/bin/env python3
"""The man pages stay true to the programs.

- ferryd(8): its OPTIONS are exactly the options `ferryd --help` lists.
- ferryctl(8): its COMMANDS are exactly ferryctl's subcommands (walked through `--help` of each),
  each with exactly the options its `--help` lists; its OPTIONS are ferryctl's global ones.
- ferryd.json(5): every key ferryd's parser knows, at every level (ferryd --check names them
  when it refuses an unknown key), is described; its EXAMPLE is examples/ferryd.json, which
  `ferryd --check` accepts.
- The pages pandoc made in the build render without groff warnings.

Usage: man_test.py SOURCE_DIR BUILD_DIR FERRYD FERRYCTL. Exit 0 pass, 1 fail.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

errors = []


def error(msg):
    errors.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def help_of(prog, path):
    r = subprocess.run([prog] + path + ["--help"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit("FAIL: %s --help exited %d" % (" ".join([prog] + path), r.returncode))
    return r.stdout


def help_options(text):
    """Long options of a CLI11 --help, without --help."""
    opts = set()
    section = None
    for line in text.splitlines():
        if re.match(r"^\S.*:$", line):
            section = line[:-1]
            continue
        m = re.match(r"^\s{2}(?:-\w,)?(--[\w-]+)", line)
        if section == "Options" and m and m.group(1) != "--help":
            opts.add(m.group(1))
    return opts


def help_subcommands(text):
    subs, in_subs = [], False
    for line in text.splitlines():
        if line.startswith("Subcommands:"):
            in_subs = True
        elif in_subs and re.match(r"^\s{2}([a-z][\w-]*)\s", line):
            subs.append(re.match(r"^\s{2}([a-z][\w-]*)", line).group(1))
        elif in_subs and line and not line.startswith(" "):
            in_subs = False
    return subs


def sections(md):
    """'# TITLE' -> its lines."""
    out, cur = {}, None
    for line in md.splitlines():
        if line.startswith("# "):
            cur = line[2:].strip()
            out[cur] = []
        elif cur:
            out[cur].append(line)
    return out


def bold_options(line):
    return {o for o in re.findall(r"\*\*(--[\w-]+)\*\*", line) if o != "--help"}


def check_ferryd(src, ferryd):
    page = sections(open(os.path.join(src, "docs/man/ferryd.8.md")).read())
    documented = set()
    for line in page.get("OPTIONS", []):
        if line.startswith("**-"):
            documented |= bold_options(line)
    actual = help_options(help_of(ferryd, []))
    for o in sorted(actual - documented):
        error("ferryd.8: `ferryd --help` has %s, the man page does not" % o)
    for o in sorted(documented - actual):
        error("ferryd.8: documents %s, which `ferryd --help` does not list" % o)
    synopsis = set()
    for line in page.get("SYNOPSIS", []):
        synopsis |= bold_options(line)
    for o in sorted(actual - synopsis):
        error("ferryd.8: %s is missing from the SYNOPSIS" % o)


def ferryctl_tree(ferryctl):
    """{command path: options} for every ferryctl command, '' for the global options."""
    tree = {}

    def walk(path):
        text = help_of(ferryctl, path)
        tree[" ".join(path)] = help_options(text)
        for s in help_subcommands(text):
            walk(path + [s])

    walk([])
    return tree


def check_ferryctl(src, ferryctl):
    tree = ferryctl_tree(ferryctl)
    page = sections(open(os.path.join(src, "docs/man/ferryctl.8.md")).read())
    documented = {"": set()}
    for line in page.get("OPTIONS", []):
        if line.startswith("**-"):
            documented[""] |= bold_options(line)
    current = None
    for line in page.get("COMMANDS", []):
        m = re.match(r"^\*\*([a-z][a-z -]*)\*\*", line)
        if m:
            current = m.group(1).strip()
            documented.setdefault(current, set())
            documented[current] |= bold_options(line)
        elif line.startswith("**-") and current is not None:
            documented[current] |= bold_options(line)
    leaves = {p for p in tree if p and not any(q.startswith(p + " ") for q in tree)}
    for p in sorted(leaves - documented.keys()):
        error("ferryctl.8: command `ferryctl %s` is not documented" % p)
    for p in sorted(documented.keys() - tree.keys()):
        error("ferryctl.8: documents `ferryctl %s`, which ferryctl does not have" % p)
    for p in sorted(tree.keys() & documented.keys()):
        for o in sorted(tree[p] - documented[p]):
            error("ferryctl.8: `ferryctl %s` has %s, the man page does not" % (p, o))
        for o in sorted(documented[p] - tree[p]):
            error("ferryctl.8: documents %s for `ferryctl %s`, which does not take it" % (o, p))
    return len(tree)


# Objects of the configuration, each a valid configuration with "zz_unknown" placed in one
# object: ferryd --check refuses it and lists the keys known there.
BASE = {
    "auth_groups": {"a": {"user": "u", "secret_file": "/nonexistent"}},
    "backstores": {"r": {"type": "ram", "size": "1M"}},
    "volumes": [{"name": "v", "table": "0 8 zero"}],
    "targets": {"iqn.2026-11.org.ferry:t": {
        "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:3260"]}],
        "luns": [{"lun": 0, "backstore": "r"}],
        "acls": [{"initiators": ["*"], "luns": [{"lun": 0, "as": 0}]}]}},
}
T = ("targets", "iqn.2026-11.org.ferry:t")
PROBES = {
    "top level": (),
    "discovery": ("discovery",),
    "copy": ("copy",),
    "sanitize": ("sanitize",),
    "metrics": ("metrics",),
    "log": ("log",),
    "auth group": ("auth_groups", "a"),
    "volume": ("volumes", 0),
    "target": T,
    "portal group": T + ("portal_groups", 0),
    "target LUN": T + ("luns", 0),
    "ACL entry": T + ("acls", 0),
    "ACL LUN map": T + ("acls", 0, "luns", 0),
    "fuse": ("fuse",),
}
FILL = {"metrics": {"listen": "127.0.0.1:9560"}, "fuse": {"mount_point": "/mnt"}}


def known_keys(ferryd, work, where, path):
    c = json.loads(json.dumps(BASE))
    obj = c
    for i, k in enumerate(path):
        if isinstance(obj, dict) and k not in obj:
            obj[k] = json.loads(json.dumps(FILL.get(k, {})))
        obj = obj[k]
    obj["zz_unknown"] = 1
    f = os.path.join(work, "probe.json")
    json.dump(c, open(f, "w"))
    r = subprocess.run([ferryd, "--check", "--config", f], capture_output=True, text=True,
                       timeout=30)
    m = re.search(r"zz_unknown: unknown key \(known here: ([^)]*)\)", r.stdout + r.stderr)
    if not m:
        error("ferryd --check did not name the keys known in the %s: %s" % (where, r.stderr.strip()))
        return set()
    return {k.strip() for k in m.group(1).split(",")}


def check_config_page(src, ferryd):
    md = open(os.path.join(src, "docs/man/ferryd.json.5.md")).read()
    described = set()
    for token in re.findall(r"\*\*([\w.]+)\*\*", md):
        described |= set(token.split("."))
    work = tempfile.mkdtemp(prefix="ferry-man-")
    try:
        total = 0
        for where, path in PROBES.items():
            keys = known_keys(ferryd, work, where, path)
            total += len(keys)
            for k in sorted(keys - described):
                error("ferryd.json.5: key '%s' of the %s is not described" % (k, where))
    finally:
        shutil.rmtree(work)
    # The EXAMPLE is the installed example, and ferryd accepts it.
    example = "\n".join(sections(md).get("EXAMPLE", []))
    m = re.search(r"\n((?: {4}.*\n?)+)", example)
    shipped = os.path.join(src, "examples/ferryd.json")
    if not m or json.loads(re.sub(r"(?m)^ {4}", "", m.group(1))) != json.load(open(shipped)):
        error("ferryd.json.5: the EXAMPLE is not examples/ferryd.json")
    r = subprocess.run([ferryd, "--check", "--config", shipped], capture_output=True, text=True)
    if r.returncode != 0:
        error("ferryd --check examples/ferryd.json: %s" % r.stderr.strip())
    return total


def check_rendered(build):
    for page in ("ferryd.8", "ferryctl.8", "ferryd.json.5"):
        f = os.path.join(build, "man", page)
        if not os.path.exists(f):
            error("%s was not built (the man target)" % f)
            continue
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", f], capture_output=True,
                           text=True)
        if r.returncode != 0 or r.stderr.strip():
            error("groff warns about %s: %s" % (page, r.stderr.strip()))


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    src, build, ferryd, ferryctl = sys.argv[1:]
    check_ferryd(src, ferryd)
    commands = check_ferryctl(src, ferryctl)
    keys = check_config_page(src, ferryd)
    if shutil.which("groff"):
        check_rendered(build)
    if errors:
        print("%d problems" % len(errors), file=sys.stderr)
        return 1
    print("PASS: ferryd options, %d ferryctl commands, %d configuration keys documented"
          % (commands, keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
