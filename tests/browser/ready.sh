# Sourced by the browser test scripts (tests/cli/test_viewer.sh, test_serve_browser.sh, test_python.sh).
# browser_ready NAME TMPDIR: 0 when Debian's chromium, node/npm and playwright-core are ready (playwright-core is
# installed into tests/browser/node_modules from its package-lock.json when missing); otherwise prints
# "SKIP NAME: why" and returns 1.
browser_ready() {
    br="$(cd "$(dirname "$0")/../browser" && pwd)"
    if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
        echo "SKIP $1: chromium is not installed (apt-get install chromium, or make deps)"
        return 1
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "SKIP $1: node/npm are not installed (apt-get install nodejs npm)"
        return 1
    fi
    if [ ! -f "$br/node_modules/playwright-core/package.json" ] &&
        ! (cd "$br" && npm ci --no-audit --no-fund --loglevel=error >"$2/npm.log" 2>&1); then
        echo "SKIP $1: cannot install playwright-core from package-lock.json: $(tail -1 "$2/npm.log")"
        return 1
    fi
    return 0
}
