#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: makes a virtualenv, installs the project with its test
# dependencies and the system tools the real-part tests drive (Debian's chromium, swaks, the PostgreSQL
# client, a CJK font for screenshots), then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${TIPLINE_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v swaks >/dev/null || missing+=(swaks)
  command -v pg_dump >/dev/null || missing+=(postgresql-client)
  # A CJK font, so the browser tests' screenshots show Chinese rather than boxes (about 5 MB installed).
  [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

if [ -f tests/browser/package.json ] && command -v npm >/dev/null; then
  (cd tests/browser && { [ -f package-lock.json ] && npm ci --silent --no-audit --no-fund || npm install --silent --no-audit --no-fund; })
fi

exec "$VENV/bin/python" -m pytest "$@"
