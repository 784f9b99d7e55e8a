#!/usr/bin/env bash
# Container entrypoint: one image, one role per container.
#
#   tipline-entrypoint intake|mail|staff|worker   serve that role (HTTP on $PORT: the role's routes + probes)
#   tipline-entrypoint all                        every server role in one process (small sites)
#   tipline-entrypoint migrate                    wait for the database, then `tipline db upgrade`
#   tipline-entrypoint tipline ARGS...            any other command line (staff add, audit verify, ...)
#
# Secrets come from files: for every TIPLINE_<NAME>_FILE the file's content becomes TIPLINE_<NAME>
# (database URL, lookup secret, metrics token). Refuses to run as root, and refuses to start a server
# role if an identity private key is anywhere it could read: that key lives only on the custodial machine.
set -euo pipefail

log() { printf '{"level":"%s","logger":"entrypoint","msg":"%s"}\n' "$1" "$2" >&2; }
die() { log error "$2"; exit "$1"; }

load_file_secrets() {
    local var name file
    while IFS= read -r var; do
        name="${var%_FILE}"
        file="${!var}"
        [[ -n "${!name:-}" ]] && die 78 "both ${name} and ${var} are set; use one"
        [[ -r "$file" ]] || die 78 "${var} points to a file that cannot be read"
        # $(<file) drops trailing newlines (editors add one); the value itself is never printed.
        export "${name}=$(<"$file")"
        unset "$var"
    done < <(compgen -e | grep -E '^TIPLINE_[A-Z0-9_]+_FILE$' || true)
}

refuse_root() {
    if [[ "$(id -u)" == "0" && "${TIPLINE_ALLOW_ROOT:-}" != "1" ]]; then
        die 77 "refusing to run as root; run as the image's tipline user (uid 10001)"
    fi
}

refuse_identity_key() {
    local dir
    for dir in "${TIPLINE_KEYS_DIR:-}" "${TIPLINE_DATA_DIR:-}/keys" "${TIPLINE_DATA_DIR:-}/custody"; do
        [[ -n "$dir" && -d "$dir" ]] || continue
        if compgen -G "${dir}/identity*.private*" > /dev/null; then
            die 78 "an identity private key is readable in ${dir}; it belongs on the custodial machine only"
        fi
    done
}

check_tmp() {
    local tmp="${TMPDIR:-/tmp}"
    [[ -d "$tmp" && -w "$tmp" ]] || die 73 "TMPDIR (${tmp}) is not writable; mount a tmpfs there"
}

wait_for_database() {
    local tries="${TIPLINE_DB_WAIT_TRIES:-30}" i
    for ((i = 1; i <= tries; i++)); do
        if tipline db current > /dev/null 2>&1; then
            return 0
        fi
        log info "waiting for the database (${i}/${tries})"
        sleep "${TIPLINE_DB_WAIT_SECONDS:-2}"
    done
    die 69 "database unreachable after ${tries} tries"
}

main() {
    local role="${1:-all}"
    if [[ $# -gt 0 ]]; then shift; fi
    refuse_root
    load_file_secrets
    check_tmp
    case "$role" in
        intake | mail | staff | worker)
            refuse_identity_key
            exec tipline serve --role "$role" --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" \
                --workers "${TIPLINE_WEB_WORKERS:-1}" "$@"
            ;;
        all)
            refuse_identity_key
            exec tipline serve --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" "$@"
            ;;
        migrate)
            wait_for_database
            exec tipline db upgrade
            ;;
        tipline)
            exec tipline "$@"
            ;;
        *)
            die 64 "unknown role '${role}': intake, mail, staff, worker, all, migrate or tipline ARGS"
            ;;
    esac
}

main "$@"
