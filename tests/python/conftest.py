"""pytest set-up of the Python package tests (tests/cli/test_python.sh runs them).

Each test's result is also written as one "PASS name" / "FAIL name: why" / "SKIP name: why" line to the file
named by $AV_RESULT_LINES (the lines tests/run.sh counts); pytest's own report goes to its log. Fixtures give
the CLI binary (for reference outputs), the repository's models and the shared real models."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))  # safetensors_np: an independent numpy reader of traces


def _line(report):
    name = "python_" + report.nodeid.split("::")[-1]
    if report.passed:
        return "PASS " + name
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "SKIP %s: %s" % (name, reason.replace("Skipped: ", "").splitlines()[0])
    why = str(report.longrepr).strip().splitlines()
    msg = next((l for l in why if l.startswith("E ")), why[-1] if why else "failed")
    return "FAIL %s: %s" % (name, msg[1:].strip() if msg.startswith("E ") else msg)


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and not report.passed):
        path = os.environ.get("AV_RESULT_LINES")
        line = _line(report)
        if path:
            with open(path, "a") as f:
                f.write(line + "\n")


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def cli():
    """Runs the attnviz CLI; returns its stdout (bytes), failing the test with its stderr."""
    binary = os.environ.get("ATTNVIZ_BIN", os.path.join(ROOT, "build", "attnviz"))

    def run(*args):
        p = subprocess.run([binary] + [str(a) for a in args], capture_output=True, timeout=300)
        if p.returncode != 0:
            pytest.fail("attnviz %s: %s" % (" ".join(map(str, args)), p.stderr.decode(errors="replace").strip()))
        return p.stdout
    return run


@pytest.fixture(scope="session")
def shared():
    return os.environ.get("ATTNVIZ_SHARED", os.path.join(ROOT, "..", "shared"))


@pytest.fixture(scope="session")
def stories(shared):
    path = os.path.join(shared, "models", "stories260K", "stories260K.bin")
    if not os.path.exists(path):
        pytest.skip("%s not found (../shared holds the real models)" % path)
    return path


@pytest.fixture(scope="session")
def induction():
    return os.path.join(ROOT, "models", "induction", "induction.bin")


@pytest.fixture(scope="session")
def fr_en():
    return os.path.join(ROOT, "models", "demo-fr-en")
