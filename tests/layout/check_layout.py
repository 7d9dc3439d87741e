#!/usr/bin/env python3
"""The dependency rules of DESIGN.md section 2, checked on the source tree:
- builder/ never includes a header of plugins/ or of the library tier plugins/lib/ (it reaches
  stages through core), and its CMakeLists links no target defined under plugins/;
- a plugin includes headers of its own directory, plugins/lib/ and core only, and links no target
  another plugin directory defines (a plugin never links another plugin).

Usage: check_layout.py SOURCE_ROOT       check the tree, exit 1 listing every break
       check_layout.py --self-test       build small trees with each break and check each is caught
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)
TARGET_DEF = re.compile(r'\b(?:add_library|kiln_add_plugin|add_executable)\(\s*([A-Za-z0-9_]+)')
LINKS = re.compile(r'target_link_libraries\(\s*[A-Za-z0-9_]+([^)]*)\)', re.S)


def sources(d):
    for top, _, files in os.walk(d):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                yield os.path.join(top, f)


def headers_by_name(root):
    """Header base path (as included) -> the plugin-tier directories that hold it."""
    found = {}
    plugins = os.path.join(root, "plugins")
    for path in sources(plugins):
        if path.endswith(".h"):
            rel = os.path.relpath(path, plugins)
            owner = rel.split(os.sep)[0]
            if owner == "lib":
                owner = "lib/" + rel.split(os.sep)[1]
            found.setdefault(os.path.basename(path), set()).add(owner)
    return found


def targets_of(cmake_file):
    try:
        text = open(cmake_file).read()
    except OSError:
        return set(), set()
    defined = set(TARGET_DEF.findall(text))
    linked = set()
    for args in LINKS.findall(text):
        linked.update(a for a in args.split() if a not in ("PRIVATE", "PUBLIC", "INTERFACE"))
    return defined, linked


def plugin_dirs(root):
    d = os.path.join(root, "plugins")
    return sorted(n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n)) and n != "lib")


def check(root):
    problems = []
    private = headers_by_name(root)
    for path in sources(os.path.join(root, "builder")):
        for inc in INCLUDE.findall(open(path, errors="replace").read()):
            local = os.path.exists(os.path.join(os.path.dirname(path), inc))
            owners = private.get(os.path.basename(inc))
            if owners and not local:
                problems.append("%s includes %s, a private header of plugins/%s: go through core "
                                "(kiln_pipeline_* with the stage) instead"
                                % (os.path.relpath(path, root), inc, ", plugins/".join(sorted(owners))))
    definers = {}
    for name in plugin_dirs(root):
        for t in targets_of(os.path.join(root, "plugins", name, "CMakeLists.txt"))[0]:
            definers[t] = name
    _, builder_links = targets_of(os.path.join(root, "builder", "CMakeLists.txt"))
    lib_targets = set()
    for top, _, files in os.walk(os.path.join(root, "plugins", "lib")):
        if "CMakeLists.txt" in files:
            lib_targets |= targets_of(os.path.join(top, "CMakeLists.txt"))[0]
    for t in sorted(builder_links & (set(definers) | lib_targets)):
        problems.append("builder/CMakeLists.txt links %s, defined under plugins/" % t)
    for name in plugin_dirs(root):
        _, links = targets_of(os.path.join(root, "plugins", name, "CMakeLists.txt"))
        for t in sorted(links):
            if definers.get(t, name) != name:
                problems.append("plugins/%s links %s of plugins/%s: move the shared code to "
                                "plugins/lib/" % (name, t, definers[t]))
        for path in sources(os.path.join(root, "plugins", name)):
            for inc in INCLUDE.findall(open(path, errors="replace").read()):
                if os.path.exists(os.path.join(os.path.dirname(path), inc)):
                    continue
                owners = private.get(os.path.basename(inc), set())
                if owners and not any(o == name or o.startswith("lib/") for o in owners):
                    problems.append("%s includes %s of plugins/%s: a plugin uses core and "
                                    "plugins/lib/ only" % (os.path.relpath(path, root), inc,
                                                            ", plugins/".join(sorted(owners))))
    return problems


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def self_test():
    """Each break on a minimal tree must be reported; the clean tree must pass."""
    base = {
        "builder/cmd_x.c": '#include "cli.h"\n#include "util/buf.h"\n',
        "builder/cli.h": "",
        "builder/CMakeLists.txt": "add_executable(kiln x.c)\ntarget_link_libraries(kiln PRIVATE kiln_core)\n",
        "plugins/lib/up/CMakeLists.txt": "add_library(kiln_up STATIC up.c)\n",
        "plugins/lib/up/upload.h": "",
        "plugins/a/CMakeLists.txt": "add_library(kiln_a_model STATIC m.c)\nkiln_add_plugin(a s.c)\n"
                                    "target_link_libraries(a PRIVATE kiln_up kiln_a_model)\n",
        "plugins/a/model.h": "",
        "plugins/a/s.c": '#include "model.h"\n#include "upload.h"\n',
        "plugins/b/CMakeLists.txt": "kiln_add_plugin(b s.c)\ntarget_link_libraries(b PRIVATE kiln_up)\n",
        "plugins/b/s.c": '#include "upload.h"\n#include <kiln/plugin.h>\n',
    }
    breaks = {
        "builder includes a library header": ("builder/cmd_x.c", '#include "upload.h"\n'),
        "builder includes a plugin header": ("builder/cmd_x.c", '#include "model.h"\n'),
        "builder links a library": ("builder/CMakeLists.txt",
                                    "target_link_libraries(kiln PRIVATE kiln_up)\n"),
        "plugin links another plugin's library": ("plugins/b/CMakeLists.txt",
                                                  "target_link_libraries(b PRIVATE kiln_a_model)\n"),
        "plugin includes another plugin's header": ("plugins/b/s.c", '#include "model.h"\n'),
    }
    failures = 0
    with tempfile.TemporaryDirectory() as clean:
        for rel, text in base.items():
            write(clean, rel, text)
        if check(clean):
            print("FAIL: the clean tree was reported: %s" % check(clean))
            failures += 1
    for what, (rel, extra) in breaks.items():
        with tempfile.TemporaryDirectory() as root:
            for r, text in base.items():
                write(root, r, text + (extra if r == rel else ""))
            found = check(root)
            if not found:
                print("FAIL: not caught: %s" % what)
                failures += 1
            else:
                print("caught: %s: %s" % (what, found[0]))
    return 1 if failures else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    problems = check(sys.argv[1])
    for p in problems:
        print(p)
    print("%d layout problem(s)" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
