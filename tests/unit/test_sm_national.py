# ruff: noqa: S603, S607 - the tests run the OpenSSL command line on purpose
"""National suite (国密): SM3 and SM4 known answers, SM2 against OpenSSL both ways, the SM2/SM4 envelope,
key files, both suites in one ring, SM3 audit chains."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from service.audit.chain import GENESIS, LinkFields, StoredLink, entry_hash, verify_chain
from service.platform.crypto import sm2
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import (
    HPKE_SUITE,
    KeyFileError,
    KeyRing,
    generate_key_pair,
    read_key_pair,
    read_public_key,
    write_key_pair,
    write_public_key,
)
from service.platform.crypto.national import NATIONAL_SUITE, SM2KeyPair
from tests.helpers.pace import cpu_pace
from tests.helpers.tools import apt, missing, require_executable

VECTORS = Path(cryptography_vectors.__file__).parent


@pytest.fixture(scope="module")
def openssl_sm2() -> None:
    """The OpenSSL command line with SM2 (Debian's openssl 3 has it)."""
    openssl = require_executable("openssl", apt("openssl"))
    algorithms = subprocess.run([openssl, "list", "-public-key-algorithms"], capture_output=True, text=True)
    if "SM2" not in algorithms.stdout:
        missing("SM2 in this OpenSSL (`openssl list -public-key-algorithms`)", apt("openssl") + ", OpenSSL 3")


needs_openssl_sm2 = pytest.mark.usefixtures("openssl_sm2")


def _nist_records(path: Path) -> list[dict[str, str]]:
    records, current = [], {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().upper(), value.strip()
        if key in ("COUNT", "LEN") and current:
            records.append(current)
            current = {}
        current[key] = value
    if current:
        records.append(current)
    return records


def test_sm3_known_answers() -> None:
    records = _nist_records(VECTORS / "hashes/SM3/oscca.txt")
    assert len(records) >= 4
    for rec in records:
        msg = bytes.fromhex(rec["MSG"])[: int(rec["LEN"]) // 8]
        digest = hashes.Hash(hashes.SM3())
        digest.update(msg)
        assert digest.finalize().hex() == rec["MD"].lower()


def test_sm4_ecb_known_answers() -> None:
    records = _nist_records(VECTORS / "ciphers/SM4/draft-ribose-cfrg-sm4-10-ecb.txt")
    assert records
    for rec in records:
        enc = Cipher(algorithms.SM4(bytes.fromhex(rec["KEY"])), modes.ECB()).encryptor()  # noqa: S305 - the known-answer vectors are ECB
        assert (enc.update(bytes.fromhex(rec["PLAINTEXT"])) + enc.finalize()).hex() == rec[
            "CIPHERTEXT"
        ].lower()


def test_sm4_gcm_known_answer_rfc8998() -> None:
    (rec,) = _nist_records(VECTORS / "ciphers/SM4/rfc8998.txt")
    enc = Cipher(algorithms.SM4(bytes.fromhex(rec["KEY"])), modes.GCM(bytes.fromhex(rec["IV"]))).encryptor()
    enc.authenticate_additional_data(bytes.fromhex(rec["AAD"]))
    ct = enc.update(bytes.fromhex(rec["PLAINTEXT"])) + enc.finalize()
    assert ct.hex() == rec["CIPHERTEXT"].lower() and enc.tag.hex() == rec["TAG"].lower()


def test_audit_chain_sm3_known_answer_and_mixed_suites() -> None:
    from service.audit.chain import HASH_SUITES

    assert HASH_SUITES["sm3"](b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    links, prev = [], GENESIS
    for seq, suite in enumerate(["sha256", "sha256", "sm3", "sm3"], start=1):
        fields = LinkFields(0, seq, "2026-01-01T00:00:00.000000Z", "cli", "x", "clue", "1", "{}", suite, prev)
        prev = entry_hash(fields)
        links.append(StoredLink(seq, fields, prev))
    assert verify_chain(0, links, (4, prev)) is None
    forged = LinkFields(**{**vars(links[2].fields), "suite": "sha256"})
    links[2] = StoredLink(3, forged, links[2].stored_hash)
    assert verify_chain(0, links, (4, prev)) is not None


# --- SM2 against OpenSSL, both directions ----------------------------------------------------------------


@pytest.fixture(scope="module")
def openssl_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An SM2 key made by OpenSSL, and its private scalar as OpenSSL prints it."""
    folder = tmp_path_factory.mktemp("sm2")
    key = folder / "key.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "SM2", "-out", str(key)], check=True, capture_output=True
    )
    text = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-noout", "-text"], check=True, capture_output=True, text=True
    ).stdout
    hex_lines = text.split("priv:")[1].split("pub:")[0]
    scalar = bytes.fromhex("".join(hex_lines.split()).replace(":", ""))
    return key, scalar.rjust(32, b"\x00")[-32:]


@needs_openssl_sm2
def test_sm2_public_key_matches_openssl(openssl_key: tuple[Path, bytes], tmp_path: Path) -> None:
    key, scalar = openssl_key
    ours = tmp_path / "pub.pem"
    ours.write_bytes(sm2.public_to_pem(sm2.public_from_private(scalar)))
    theirs = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout"], check=True, capture_output=True
    ).stdout
    assert ours.read_bytes() == theirs


@needs_openssl_sm2
def test_sm2_openssl_encrypts_we_decrypt(openssl_key: tuple[Path, bytes], tmp_path: Path) -> None:
    key, scalar = openssl_key
    (tmp_path / "pub.pem").write_bytes(sm2.public_to_pem(sm2.public_from_private(scalar)))
    message = os.urandom(16) + "数据密钥".encode()
    (tmp_path / "m").write_bytes(message)
    subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            str(tmp_path / "pub.pem"),
            "-in",
            str(tmp_path / "m"),
            "-out",
            str(tmp_path / "c"),
        ],
        check=True,
        capture_output=True,
    )
    assert sm2.decrypt(scalar, sm2.from_der((tmp_path / "c").read_bytes())) == message


@needs_openssl_sm2
def test_sm2_we_encrypt_openssl_decrypts(openssl_key: tuple[Path, bytes], tmp_path: Path) -> None:
    key, scalar = openssl_key
    message = os.urandom(16)
    (tmp_path / "c").write_bytes(sm2.to_der(sm2.encrypt(sm2.public_from_private(scalar), message)))
    out = subprocess.run(
        ["openssl", "pkeyutl", "-decrypt", "-inkey", str(key), "-in", str(tmp_path / "c")],
        check=True,
        capture_output=True,
    ).stdout
    assert out == message


@needs_openssl_sm2
def test_sm2_signatures_verify_both_ways(openssl_key: tuple[Path, bytes], tmp_path: Path) -> None:
    key, scalar = openssl_key
    public = sm2.public_from_private(scalar)
    (tmp_path / "pub.pem").write_bytes(sm2.public_to_pem(public))
    message = "审计检查点 chain heads".encode()
    (tmp_path / "m").write_bytes(message)
    # OpenSSL 3.0's pkeyutl needs the standard's default signer id spelt out; signatures are DER (r, s).
    distid = ["-pkeyopt", "distid:1234567812345678"]
    sig_der = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-sign",
            "-rawin",
            "-digest",
            "sm3",
            *distid,
            "-inkey",
            str(key),
            "-in",
            str(tmp_path / "m"),
        ],
        check=True,
        capture_output=True,
    ).stdout
    r, s = _der_rs(sig_der)
    assert sm2.verify(public, message, r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    ours = sm2.sign(scalar, message)
    (tmp_path / "s").write_bytes(_rs_der(ours))
    result = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-rawin",
            "-digest",
            "sm3",
            *distid,
            "-pubin",
            "-inkey",
            str(tmp_path / "pub.pem"),
            "-in",
            str(tmp_path / "m"),
            "-sigfile",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not sm2.verify(public, message + b"!", ours)


def _der_rs(der: bytes) -> tuple[int, int]:
    pos = 2 if der[1] < 0x80 else 3
    values = []
    for _ in range(2):
        assert der[pos] == 0x02
        n = der[pos + 1]
        values.append(int.from_bytes(der[pos + 2 : pos + 2 + n], "big"))
        pos += 2 + n
    return values[0], values[1]


def _rs_der(sig: bytes) -> bytes:
    def integer(v: bytes) -> bytes:
        v = v.lstrip(b"\x00") or b"\x00"
        if v[0] & 0x80:
            v = b"\x00" + v
        return b"\x02" + bytes([len(v)]) + v

    body = integer(sig[:32]) + integer(sig[32:])
    return b"\x30" + bytes([len(body)]) + body


def test_sm2_rejects_tampered_and_off_curve() -> None:
    pair_private = sm2.generate_private()
    public = sm2.public_from_private(pair_private)
    ct = bytearray(sm2.encrypt(public, b"0123456789abcdef"))
    ct[-1] ^= 1
    with pytest.raises(sm2.SM2Error):
        sm2.decrypt(pair_private, bytes(ct))
    off = b"\x04" + (1).to_bytes(32, "big") + (1).to_bytes(32, "big")
    with pytest.raises(sm2.SM2Error):
        sm2.encrypt(off, b"x")
    with pytest.raises(sm2.SM2Error):
        sm2.decrypt(pair_private, off + bytes(33))


# --- The national envelope suite ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def national() -> tuple[KeyRing, SM2KeyPair]:
    case, identity = SM2KeyPair.generate("case"), SM2KeyPair.generate("identity")
    return KeyRing(case_public=case.public, identity_public=identity.public, private=[case, identity]), case


def test_national_round_trip_names_suite(national: tuple[KeyRing, SM2KeyPair]) -> None:
    ring, case = national
    sealed = ring.seal_case("举报内容".encode(), "clues/1/content")
    envelope = Envelope.from_bytes(sealed)
    assert envelope.suite == NATIONAL_SUITE and envelope.key_id == case.public.key_id
    assert len(envelope.enc) == sm2.OVERHEAD + 16
    assert ring.open(sealed, "clues/1/content") == "举报内容".encode()


def test_national_binding_and_tamper(national: tuple[KeyRing, SM2KeyPair]) -> None:
    ring, _ = national
    sealed = ring.seal_case(b"secret", "clues/1/content")
    with pytest.raises(EnvelopeError):
        ring.open(sealed, "clues/2/content")
    for index in (-1, -20, -40, 60):  # tag, body, salt/nonce, wrapped data key
        damaged = bytearray(sealed)
        damaged[index] ^= 1
        with pytest.raises(EnvelopeError):
            ring.open(bytes(damaged), "clues/1/content")


def test_one_sm2_wrapping_per_window(national: tuple[KeyRing, SM2KeyPair]) -> None:
    ring, case = national
    a = Envelope.from_bytes(ring.seal_case(b"a", "x/1/f"))
    b = Envelope.from_bytes(ring.seal_case(b"a", "x/1/f"))
    assert a.enc == b.enc and a.ct != b.ct  # same wrapped data key, fresh record key and nonce
    case.public.window.forget()
    c = Envelope.from_bytes(ring.seal_case(b"a", "x/1/f"))
    assert c.enc != a.enc
    assert ring.open(a.to_bytes(), "x/1/f") == ring.open(c.to_bytes(), "x/1/f") == b"a"


def test_window_expires_by_time() -> None:
    pair = SM2KeyPair.generate("case")
    pair.public.window.seconds = 0.05
    first = Envelope.from_bytes(pair.public.seal(b"a", "b")).enc
    time.sleep(0.06)
    assert Envelope.from_bytes(pair.public.seal(b"a", "b")).enc != first


def test_one_ring_opens_both_suites(tmp_path: Path) -> None:
    old_case = generate_key_pair("case", "international")
    new_case = generate_key_pair("case", "national")
    identity = generate_key_pair("identity", "national")
    old_ring = KeyRing(case_public=old_case.public, identity_public=identity.public)
    sealed_old = old_ring.seal_case(b"before the switch", "clues/9/content")
    for pair in (old_case, new_case, identity):
        write_key_pair(tmp_path / f"{pair.public.key_id}.private.json", pair)
        write_public_key(tmp_path / f"{pair.public.key_id}.public.json", pair.public)
    loaded = [read_key_pair(tmp_path / f"{p.public.key_id}.private.json") for p in (old_case, new_case)]
    ring = KeyRing(
        case_public=read_public_key(tmp_path / f"{new_case.public.key_id}.public.json"),
        identity_public=identity.public,
        private=loaded,
    )
    sealed_new = ring.seal_case(b"after the switch", "clues/9/content")
    assert Envelope.from_bytes(sealed_old).suite == HPKE_SUITE
    assert Envelope.from_bytes(sealed_new).suite == NATIONAL_SUITE
    assert ring.open(sealed_old, "clues/9/content") == b"before the switch"
    assert ring.open(sealed_new, "clues/9/content") == b"after the switch"
    # A relabelled envelope (suite swapped) does not open.
    env = Envelope.from_bytes(sealed_new)
    with pytest.raises(EnvelopeError):
        ring.open(Envelope(HPKE_SUITE, env.key_id, env.enc, env.ct).to_bytes(), "clues/9/content")


def test_national_key_file_checks(tmp_path: Path) -> None:
    import json

    pair = SM2KeyPair.generate("identity")
    path = tmp_path / "k.json"
    write_key_pair(path, pair)
    doc = json.loads(path.read_text())
    assert doc["suite"] == NATIONAL_SUITE and set(doc["public"]) == {"sm2"} and set(doc["private"]) == {"sm2"}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert read_key_pair(path).public.key_id == pair.public.key_id
    doc["public"]["sm2"] = __import__("base64").b64encode(b"\x04" + bytes(64)).decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError):
        read_public_key(path)


def test_national_seal_throughput() -> None:
    """Per-record sealing must not pay for SM2: thousands of records a second on one core."""
    pair = SM2KeyPair.generate("case")
    pair.public.seal(b"warm", "w")
    payload = "举报内容".encode() * 100
    start = time.perf_counter()
    for i in range(2000):
        pair.public.seal(payload, f"clues/{i}/content")
    rate = 2000 / (time.perf_counter() - start)
    floor = cpu_pace().floor(2000)  # 2000 a second on the reference machine
    assert rate > floor, f"{rate:.0f} seals/s (at least {floor:.0f} on this machine now)"


def test_base_point_multiples_from_the_table_match_double_and_add() -> None:
    """The fixed-base table (public halves, C1, signatures) gives the same points as the generic affine
    double-and-add, at the scalar range's edges and for random scalars."""
    base = sm2._from_hex(sm2._G_HEX)  # noqa: SLF001 - the two internal paths compared
    edges = [1, 2, 15, 16, 17, 255, 256, 2**255, sm2.N - 2, sm2.N - 1]
    for k in [*edges, *(int.from_bytes(os.urandom(32), "big") % (sm2.N - 1) + 1 for _ in range(40))]:
        assert sm2._times_base(k) == sm2._times(k, base), k  # noqa: SLF001
