#!/usr/bin/env bash
# Run the service on a fresh machine. As root (with apt-get), first installs the Debian tools attachment
# cleaning runs as commands: mat2 (brings exiftool, Poppler, cairo) for office documents, PDF and HEIC, and
# ffmpeg for video; without them those kinds are sealed, never passed through (docs/security.md). Then
# makes the virtualenv, installs the project and runs `tipline serve` with any extra arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v mat2 >/dev/null || missing+=(mat2)
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
elif ! command -v mat2 >/dev/null || ! command -v ffmpeg >/dev/null; then
  echo "note: mat2 or ffmpeg is missing (sudo apt-get install mat2 ffmpeg): office documents, PDFs," \
       "HEIC photos and videos will be sealed instead of cleaned" >&2
fi

VENV=${TIPLINE_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e .
exec "$VENV/bin/tipline" serve "$@"
