"""libattnviz.so (versioned soname, exports exactly the public header) and how the package finds it."""
import os
import re
import shutil
import subprocess
import sys

import pytest

import attnviz


def header_functions(root):
    """Function names declared in include/attnviz.h, read by a parser of our own (not the Makefile's sed)."""
    src = open(os.path.join(root, "include", "attnviz.h")).read()
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r"\\\n", " ", src)  # a macro continued over several lines is one line
    src = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith("#"))
    names = set()
    for decl in src.replace("\n", " ").split(";"):
        decl = decl.split("}")[-1].split("{")[-1].strip()  # after a struct or extern "C" brace
        if decl.startswith("typedef") or not decl:
            continue
        m = re.match(r"^(?:const\s+)?[a-z_0-9]+(?:\s+\*?|\s*\*\s*)(av_[a-z0-9_]+)\s*\(", decl)
        if m:
            names.add(m.group(1))
    return names


def test_soname_and_links(root):
    build = os.path.join(root, "build")
    assert os.readlink(os.path.join(build, "libattnviz.so")) == "libattnviz.so.0"
    assert re.fullmatch(r"libattnviz\.so\.0\.\d+", os.readlink(os.path.join(build, "libattnviz.so.0")))
    out = subprocess.run(["readelf", "-d", os.path.join(build, "libattnviz.so")], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("readelf is not available: %s" % out.stderr.strip())
    assert "Library soname: [libattnviz.so.0]" in out.stdout


def test_exports_exactly_the_public_header(root):
    out = subprocess.run(["nm", "-D", "--defined-only", os.path.join(root, "build", "libattnviz.so")],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("nm is not available: %s" % out.stderr.strip())
    exported = {l.split()[-1].split("@")[0] for l in out.stdout.splitlines() if " T " in l}
    declared = header_functions(root)
    assert len(declared) > 70
    assert declared - exported == set(), "declared in attnviz.h but not exported"
    assert exported - declared == set(), "exported but not in attnviz.h (internal symbols leak)"


def _import(env_lib, root, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.join(root, "python"))
    env.pop("ATTNVIZ_LIB", None)
    if env_lib is not None:
        env["ATTNVIZ_LIB"] = env_lib
    return subprocess.run([sys.executable, "-c", "import attnviz; print(attnviz.lib_path)"], env=env, cwd=cwd,
                          capture_output=True, text=True)


def test_build_tree_and_override(root, tmp_path):
    p = _import(None, root, tmp_path)
    assert p.returncode == 0 and p.stdout.strip() == os.path.join(root, "build", "libattnviz.so.0"), p.stderr
    shutil.copy(os.path.join(root, "build", "libattnviz.so.0"), tmp_path / "libattnviz.so.0")
    p = _import(str(tmp_path), root, tmp_path)
    assert p.stdout.strip() == str(tmp_path / "libattnviz.so.0"), p.stderr
    p = _import(str(tmp_path / "missing.so"), root, tmp_path)
    assert p.returncode != 0 and "cannot load libattnviz" in p.stderr and "missing.so (absent)" in p.stderr


def test_installed_package_carries_the_library():
    """tests/cli/test_python.sh runs the suite on the package pip installed (AV_INSTALLED=1)."""
    if os.environ.get("AV_INSTALLED") != "1":
        pytest.skip("run on the build tree, not on a pip-installed package")
    pkg = os.path.dirname(os.path.abspath(attnviz.__file__))
    assert attnviz.lib_path == os.path.join(pkg, "libattnviz.so.0")
