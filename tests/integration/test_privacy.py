"""No trace of who: submitter details sent to a real server never appear in the database (file, WAL and
journal on SQLite with secure_delete on; a full dump on PostgreSQL) or in the process's logs, in any of
UTF-8, UTF-16, JSON-escaped or base64 form. The report text itself is absent too (case key)."""

from __future__ import annotations

import httpx

from tests.helpers import canary_forms, files_under, find_canaries, pg_dump, tipline_server
from tests.helpers.app import cli_env

NAME = "金丝雀丙丁戊"
PHONE = "13912345678"
EMAIL = "canary.zx81@example.org"
ID_NUMBER = "11010519491231002X"
ADDRESS = "幸福路88号金丝雀小区"
PHONE_IN_TEXT = "13987654321"
REPORT_TEXT = "金丝雀正文：辖区派出所副所长长期收受赌场老板的好处费，充当保护伞"
IDENTITY_CANARIES = [NAME, PHONE, EMAIL, ID_NUMBER, ADDRESS, PHONE_IN_TEXT]


def test_canary_forms_cover_base64_at_every_alignment() -> None:
    import base64

    for prefix in (b"", b"a", b"ab", b"abc"):
        blob = base64.b64encode(prefix + EMAIL.encode() + b"tail")
        assert any(form in blob for form in canary_forms(EMAIL))


async def test_no_submitter_detail_or_report_text_in_database_or_logs(
    backend, tmp_path, fresh_database_url
) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, fresh_database_url)
    log_path = tmp_path / "server.log"
    with tipline_server(env, log_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            real_name = await client.post(
                "/api/v1/tips",
                json={
                    "text": f"{REPORT_TEXT}。我叫{NAME}，电话{PHONE_IN_TEXT}。",
                    "anonymous": False,
                    "accused": {"name": "钱某", "unit": "某派出所"},
                    "submitter": {
                        "name": NAME,
                        "phone": PHONE,
                        "email": EMAIL,
                        "id_number": ID_NUMBER,
                        "address": ADDRESS,
                    },
                },
                headers={"X-Forwarded-For": "203.0.113.77", "User-Agent": "canary-agent/1.0"},
            )
            assert real_name.status_code == 201
            anonymous = await client.post(
                "/api/v1/tips", json={"text": f"{REPORT_TEXT}（匿名）", "submitter": {"phone": PHONE}}
            )
            assert anonymous.status_code == 201
            # Bad input must not echo or log values either.
            bad = await client.post("/api/v1/tips", json={"text": REPORT_TEXT, "submitter": {"email": NAME}})
            assert bad.status_code == 422 and NAME not in bad.text
            receipts = [real_name.json()["receipt"], anonymous.json()["receipt"]]

    if backend == "sqlite":
        assert (tmp_path / "own.db").exists()
        # The database, its WAL and journal, and everything else in the data directory.
        stored = b"".join(p.read_bytes() for p in files_under(tmp_path) if p != log_path)
    else:
        stored = pg_dump(fresh_database_url)
    logs = log_path.read_bytes()
    assert b"Uvicorn running" in logs  # the capture works
    assert find_canaries(stored, IDENTITY_CANARIES) == []
    assert find_canaries(logs, IDENTITY_CANARIES) == []
    assert find_canaries(stored, [REPORT_TEXT[:20], REPORT_TEXT[-16:]]) == []
    assert find_canaries(logs, [REPORT_TEXT[:20]]) == []
    for code in receipts:
        assert find_canaries(stored + logs, [code, code.replace(" ", "")]) == []
    assert b"203.0.113.77" not in stored + logs and b"127.0.0.1:" not in logs.replace(
        b"http://127.0.0.1:", b""
    )
    assert b"canary-agent" not in stored + logs
