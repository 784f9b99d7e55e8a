"""The leaks of issue 16's outside review, each as a crafted file (tests/helpers/dirty.py) through the real
pipeline with the real cleaners (Debian's mat2 and ffmpeg), judged by the independent oracle (exiftool and
a byte search, tests/helpers/oracle.py). Before the fix every crafted file below came out with the oracle
finding the planted authors, SID, label GUID, EXIF and paths (only ``docProps/*`` and PDF /Info were
handled); each test first checks the oracle does find them in the input."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from service.attachments import cleaners
from service.attachments.pipeline import store_attachment
from service.attachments.sniff import DisallowedFileType, FileKind
from service.platform.blobs import MemoryBlobStore
from tests.helpers import dirty
from tests.helpers.blobs import chunked, fake_wrap, read_back, unwrap
from tests.helpers.conformance import conformance_file
from tests.helpers.oracle import exif_tags, exiftool, findings
from tests.helpers.tools import apt, require_executable

CORPUS = "metadata/mat2"


def identity_wrap(file_key: bytes, binding: str) -> bytes:
    """Stands in for the identity key: distinguishable from ``fake_wrap``."""
    return b"ID" + fake_wrap(file_key, binding)


@pytest.fixture(autouse=True)
def tools() -> None:
    require_executable("mat2", apt("mat2"))
    require_executable("ffmpeg", apt("ffmpeg"))


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


async def clean(data: bytes, scratch: Path, **kw):  # type: ignore[no-untyped-def]
    store = MemoryBlobStore()
    record = await store_attachment(
        chunked(data, 4096), store=store, wrap_key=fake_wrap, max_size=10**8, scratch_dir=scratch, **kw
    )
    assert os.listdir(scratch) == []  # the private directory is gone
    out = await read_back(store, record) if record.sealed_reason is None else b""
    return record, out


async def test_docx_every_leak_removed_and_text_kept(scratch: Path) -> None:
    import docx

    original = dirty.dirty_docx()
    before = findings(original, suffix=".docx", canaries=dirty.CANARIES)
    for leak in (
        "S-1-5-21",
        "GPS",
        "CANARYSERIAL",
        "f42aa342",
        "word/comments.xml",
        "people.xml",
        "thumbnail",
    ):
        assert any(leak in item for item in before), leak
    record, out = await clean(original, scratch)
    assert record.kind is FileKind.DOCX and record.sealed_reason is None
    assert findings(out, suffix=".docx", canaries=dirty.CANARIES) == []
    names = zipfile.ZipFile(io.BytesIO(out)).namelist()
    assert "word/media/image1.jpeg" in names  # the picture stays, its EXIF goes
    assert not [n for n in names if "comment" in n or "people" in n or "custom" in n or "thumbnail" in n]
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(out)).paragraphs)
    assert "举报内容" in text and "新增一句" in text and "删去一句" not in text
    removed = dict(item.rsplit("=", 1) for item in record.removed_metadata)
    assert removed["office:comments"] == "1" and removed["office:people"] == "1"
    assert removed["office:custom-properties"] == "1" and removed["office:thumbnail"] == "1"
    for item in record.removed_metadata:  # fixed labels and counts: nothing from the file
        assert all(c.lower() not in item.lower() for c in dirty.CANARIES)


async def test_embedded_document_removed(scratch: Path) -> None:
    original = dirty.dirty_docx(embedded=dirty.dirty_docx())
    assert any(
        "word/embeddings" in item for item in findings(original, suffix=".docx", canaries=dirty.CANARIES)
    )
    record, out = await clean(original, scratch)
    assert findings(out, suffix=".docx", canaries=dirty.CANARIES) == []
    assert "office:embedded-files=1" in record.removed_metadata


async def test_pdf_annotation_authors_xmp_embedded_files_javascript_removed(scratch: Path) -> None:
    original = dirty.dirty_pdf()
    before = findings(original, suffix=".pdf", canaries=dirty.CANARIES)
    for leak in ("xmpmeta", "Users", "canary-js", "Canary Zhangwei"):
        assert any(leak in item for item in before), leak
    record, out = await clean(original, scratch)
    assert record.kind is FileKind.PDF and record.sealed_reason is None
    assert findings(out, suffix=".pdf", canaries=dirty.CANARIES) == []
    assert b"/JavaScript" not in out and b"/EmbeddedFile" not in out and b"/Annot" not in out


async def test_pdf_text_stays_selectable(scratch: Path) -> None:
    pdftotext = require_executable("pdftotext", apt("poppler-utils"))
    _, out = await clean(dirty.text_pdf("EVIDENCE LINE 2026"), scratch)
    text = subprocess.run(  # noqa: S603, ASYNC221 - a test's own tool
        [pdftotext, "-", "-"], input=out, capture_output=True, check=True
    ).stdout
    # Redrawn as text, not rasterised: it can be selected and searched. cairo places glyphs one by one,
    # so an extractor may see spaces inside words ("E VIDE NC E"): compare without spaces.
    assert b"EVIDENCELINE2026" in text.replace(b" ", b"")


@pytest.mark.parametrize(
    ("container", "kind"), [("mp4", FileKind.MP4), ("mov", FileKind.MOV), ("3gp", FileKind.THREE_GP)]
)
async def test_phone_video_accepted_and_cleaned(scratch: Path, container: str, kind: FileKind) -> None:
    original = dirty.dirty_video(require_executable("ffmpeg", apt("ffmpeg")), container)
    assert findings(original, suffix=f".{container}", canaries=dirty.CANARIES)
    record, out = await clean(original, scratch)
    assert (
        record.kind is kind and record.sealed_reason is None and "video:metadata=1" in record.removed_metadata
    )
    assert findings(out, suffix=f".{container}", canaries=dirty.CANARIES) == []
    dates = {
        value
        for _, tag, value in exif_tags(out, f".{container}")
        if tag.endswith(("Create Date", "Modify Date"))
    }
    assert dates == {"0000:00:00 00:00:00"}  # bit-exact mode: no creation time to match a phone's clock
    probe = subprocess.run(  # noqa: S603, ASYNC221 - a test's own tool
        [require_executable("ffprobe", apt("ffmpeg")), "-v", "error", "-show_streams", "-of", "json", "-"],
        input=out,
        capture_output=True,
        check=True,
    ).stdout
    assert b'"codec_type": "video"' in probe and b'"codec_type": "audio"' in probe  # still plays


async def test_heic_photo_accepted_and_cleaned(scratch: Path, tmp_path: Path) -> None:
    # A real HEIC (mat2's corpus) given an artist, a camera serial and GPS by exiftool itself.
    photo = tmp_path / "photo.heic"
    photo.write_bytes(conformance_file("dirty.heic", CORPUS).read_bytes())
    subprocess.run(  # noqa: S603, ASYNC221 - a test's own tool
        [
            exiftool(),
            "-q",
            "-overwrite_original",
            f"-Artist={dirty.ARTIST}",
            f"-SerialNumber={dirty.SERIAL}",
            "-GPSLatitude=39.9",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=116.4",
            "-GPSLongitudeRef=E",
            str(photo),
        ],  # fmt: skip
        check=True,
    )
    original = photo.read_bytes()
    assert {"exiftool: GPS:GPS Latitude", "exiftool: IFD0:Artist"} <= set(findings(original, suffix=".heic"))
    record, out = await clean(original, scratch)
    assert record.kind is FileKind.HEIC and record.sealed_reason is None
    assert findings(out, suffix=".heic", canaries=dirty.CANARIES) == []
    groups = {group for group, _, _ in exif_tags(out, ".heic")}
    assert not groups & {"IFD0", "ExifIFD", "GPS", "ICC_Profile", "ICC-header"}
    assert out[4:12] == b"ftypheic" and len(out) > 1_000_000  # the coded picture itself is kept


async def test_legacy_office_is_sealed_to_the_identity_key(scratch: Path) -> None:
    legacy = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + dirty.AUTHOR.encode()
    store = MemoryBlobStore()
    record = await store_attachment(
        chunked(legacy),
        store=store,
        wrap_key=fake_wrap,
        max_size=10**6,
        wrap_sealed_key=identity_wrap,
        scratch_dir=scratch,
    )
    assert record.sealed_reason == "no-cleaner-for-kind" and record.removed_metadata == ()
    assert record.wrapped_key.startswith(b"ID")  # only the identity key opens it
    assert dirty.AUTHOR.encode() not in store.blobs[record.blob_id]  # encrypted
    from service.platform.crypto.stream import decrypt_stream

    key = unwrap(record.wrapped_key[2:])
    kept = b"".join([c async for c in decrypt_stream(key, record.binding, store.open_reader(record.blob_id))])
    assert kept == legacy
    assert os.listdir(scratch) == []
    with pytest.raises(DisallowedFileType):  # no identity wrapping offered: refused, never passed through
        await store_attachment(
            chunked(legacy), store=store, wrap_key=fake_wrap, max_size=10**6, scratch_dir=scratch
        )


async def test_missing_cleaner_seals_or_refuses(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(scratch / "nothing-here"))  # a deployment without mat2 and ffmpeg
    for data in (dirty.dirty_docx(), dirty.dirty_pdf()):
        store = MemoryBlobStore()
        record = await store_attachment(
            chunked(data), store=store, wrap_key=fake_wrap, max_size=10**6, wrap_sealed_key=identity_wrap,
            scratch_dir=scratch,
        )  # fmt: skip
        assert record.sealed_reason == "cleaner-missing" and record.wrapped_key.startswith(b"ID")
        with pytest.raises(DisallowedFileType):
            await store_attachment(
                chunked(data), store=store, wrap_key=fake_wrap, max_size=10**6, scratch_dir=scratch
            )
    assert os.listdir(scratch) == []


def _docx_with(extra: dict[str, bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(dirty.dirty_docx()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in source.namelist():
            archive.writestr(name, extra.pop(name, None) or source.read(name))
        for name, body in extra.items():
            archive.writestr(name, body)
    return buffer.getvalue()


async def test_office_part_mat2_knows_no_parser_for_is_left_out(scratch: Path) -> None:
    data = _docx_with({"word/glossary/setup.py": b"print('" + dirty.AUTHOR.encode() + b"')"})
    record, out = await clean(data, scratch, wrap_sealed_key=identity_wrap)
    assert record.sealed_reason is None and "office:parts-dropped-by-mat2=1" in record.removed_metadata
    assert findings(out, suffix=".docx", canaries=dirty.CANARIES) == []


async def test_office_file_mat2_cannot_clean_is_sealed_not_passed(scratch: Path) -> None:
    data = _docx_with({"word/styles.xml": b"<w:styles xmlns:w='urn:x'><unclosed>"})  # mat2 cannot parse it
    record, _ = await clean(data, scratch, wrap_sealed_key=identity_wrap)
    assert record.sealed_reason == "cleaner-failed" and record.wrapped_key.startswith(b"ID")


async def test_broken_or_fake_office_file_refused(scratch: Path) -> None:
    fake = io.BytesIO()
    with zipfile.ZipFile(fake, "w") as archive:  # looks like Word by its first part, declares nothing
        archive.writestr("word/document.xml", b"x" * 1000)
        archive.writestr("[Content_Types].xml", b"<Types/>")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", dirty._CT)
        archive.writestr("word/document.xml", bytes(30 * 1024 * 1024))  # expands too far
    for data in (dirty.dirty_docx()[:-200], fake.getvalue(), bomb.getvalue()):
        with pytest.raises(DisallowedFileType):
            await clean(data, scratch, wrap_sealed_key=identity_wrap)
    assert os.listdir(scratch) == []


async def test_scratch_directory_private_and_removed_on_failure(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, list[str]]] = []
    real_clean = cleaners.clean

    async def watching(kind, source, work, note):  # type: ignore[no-untyped-def]
        seen.append((stat.S_IMODE(os.stat(work).st_mode), os.listdir(work)))
        assert stat.S_IMODE(os.stat(source).st_mode) == 0o600
        return await real_clean(kind, source, work, note)

    monkeypatch.setattr(cleaners, "clean", watching)
    await clean(dirty.dirty_docx(), scratch)
    assert seen == [(0o700, ["received.docx"])]

    async def failing(kind, source, work, note):  # type: ignore[no-untyped-def]
        raise RuntimeError("cleaner crashed")

    monkeypatch.setattr(cleaners, "clean", failing)
    with pytest.raises(RuntimeError):
        await clean(dirty.dirty_docx(), scratch)
    assert os.listdir(scratch) == []  # removed even on failure


@pytest.mark.slow
async def test_200mb_video_upload_streams(scratch: Path, tmp_path: Path) -> None:
    """A 200 MB phone-size video is spooled to the tmpfs as it arrives, cleaned by ffmpeg there and read
    back in chunks: the process's Python memory stays far below the file (tmpfs pages are not ours)."""
    import tracemalloc

    clip = tmp_path / "clip.mov"
    seconds = 200 * 2**20 // (640 * 360 * 2 * 25) + 1  # raw uyvy422 frames: 200 MB that ffmpeg must copy
    subprocess.run(  # noqa: S603, ASYNC221 - a test's own tool
        [
            require_executable("ffmpeg", apt("ffmpeg")),
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=duration={seconds}:size=640x360:rate=25",
            "-c:v",
            "rawvideo",
            "-pix_fmt",
            "uyvy422",
            "-metadata",
            f"artist={dirty.ARTIST}",
            str(clip),
        ],  # fmt: skip
        check=True,
    )
    size = clip.stat().st_size
    assert size >= 200 * 2**20

    async def from_disk():  # type: ignore[no-untyped-def]
        with open(clip, "rb") as handle:  # noqa: ASYNC230 - the test's source
            while block := handle.read(256 * 1024):
                yield block

    class Discard(MemoryBlobStore):
        async def open_writer(self, blob_id: str):  # type: ignore[no-untyped-def]
            writer = await super().open_writer(blob_id)

            async def write(data: bytes) -> None:
                return None

            writer.write = write  # type: ignore[method-assign]
            return writer

    tracemalloc.start()
    try:
        record = await store_attachment(
            from_disk(), store=Discard(), wrap_key=fake_wrap, max_size=size + 1, scratch_dir=scratch
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.kind is FileKind.MOV and record.sealed_reason is None and record.received_size == size
    assert record.size > 200 * 2**20  # the frames are copied, not re-encoded
    assert peak < 50 * 2**20, peak
    assert os.listdir(scratch) == []


async def test_odt_comments_revisions_and_metadata_removed(scratch: Path) -> None:
    original = dirty.dirty_odt()
    assert findings(original, suffix=".odt", canaries=dirty.CANARIES)
    record, out = await clean(original, scratch)
    assert record.kind is FileKind.ODT and record.sealed_reason is None
    assert findings(out, suffix=".odt", canaries=dirty.CANARIES) == []
    removed = set(record.removed_metadata)
    assert {
        "odf:comments=1",
        "odf:revisions-and-authors=1",
        "odf:rdf-metadata=2",
        "odf:thumbnail=1",
    } <= removed
    archive = zipfile.ZipFile(io.BytesIO(out))
    first = archive.infolist()[0]
    assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED  # still valid ODF
    assert "Pictures/photo.jpg" in archive.namelist()
    from xml.etree import ElementTree

    content = "".join(ElementTree.fromstring(archive.read("content.xml")).itertext())  # noqa: S314 - ours
    assert "举报内容" in content and "删去一句" not in content and "my comment" not in content


# --- Archives cleaned member by member; TIFF, SVG and ODG through mat2 --------------------------------------


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, body in members:
            archive.writestr(name, body)
        archive.comment = dirty.AUTHOR.encode()
    return buffer.getvalue()


async def test_zip_members_cleaned_recursively_under_neutral_names(scratch: Path) -> None:
    names = ["C:/Users/canaryzw/张三的举报.docx", "张三/IMG_0001.jpg", "说明.txt", "旧照片.zip", "Canary.pdf"]
    inner = _zip([("张三/子目录/Canary照片.jpg", dirty.exif_jpeg())])
    bodies = [dirty.dirty_docx(), dirty.exif_jpeg(), "举报说明，见附件。".encode(), inner, dirty.dirty_pdf()]
    original = _zip(list(zip(names, bodies, strict=True)))
    canaries = (*dirty.CANARIES, "张三")
    assert findings(original, suffix=".zip", canaries=canaries)  # the oracle sees the planted values
    record, out = await clean(original, scratch, wrap_sealed_key=identity_wrap)
    assert record.kind is FileKind.ZIP and record.sealed_reason is None
    assert findings(out, suffix=".zip", canaries=canaries) == []
    archive = zipfile.ZipFile(io.BytesIO(out))
    assert archive.namelist() == ["1.docx", "2.jpg", "3.txt", "4.zip", "5.pdf"] and archive.comment == b""
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert archive.read("3.txt") == "举报说明，见附件。".encode()  # content stays
    assert zipfile.ZipFile(io.BytesIO(archive.read("4.zip"))).namelist() == ["1.jpg"]
    assert "zip:members=6" in record.removed_metadata and "jpeg:APP1/Exif=2" in record.removed_metadata
    assert all("张三" not in label and "Canary" not in label for label in record.removed_metadata)


@pytest.mark.parametrize(
    "case",
    ["ratio-bomb", "too-deep", "uncleanable-member", "refused-member", "encrypted-member", "lying-header"],
)
async def test_zip_that_cannot_be_cleaned_is_sealed_whole(scratch: Path, case: str) -> None:
    legacy = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + dirty.AUTHOR.encode()
    data = {
        "ratio-bomb": lambda: _zip([("a.txt", b"ok"), ("bomb.txt", bytes(64 * 1024 * 1024))]),
        "too-deep": lambda: _zip([("1.zip", _zip([("2.zip", _zip([("3.jpg", dirty.exif_jpeg())]))]))]),
        "uncleanable-member": lambda: _zip([("photo.jpg", dirty.exif_jpeg()), ("old.doc", legacy)]),
        "refused-member": lambda: _zip([("run.exe", b"MZ\x90\x00" + bytes(200))]),
        "encrypted-member": lambda: _encrypted_flag(_zip([("a.txt", b"hello")], zipfile.ZIP_STORED)),
        "lying-header": lambda: _lying(_zip([("a.txt", b"x" * 5000)], zipfile.ZIP_STORED)),
    }[case]()
    reason = {"uncleanable-member": "archive-member", "refused-member": "archive-member"}.get(
        case, "encrypted-member" in case and "archive-member" or "archive-limits"
    )
    record, out = await clean(data, scratch, wrap_sealed_key=identity_wrap)
    assert record.sealed_reason == reason and record.wrapped_key.startswith(b"ID") and out == b""
    assert record.kind is FileKind.ZIP and record.removed_metadata == ()
    assert os.listdir(scratch) == []  # every member's plaintext went with the scratch directory
    with pytest.raises(DisallowedFileType):  # without the identity key on offer: refused, never passed
        await clean(data, scratch)


def _encrypted_flag(data: bytes) -> bytes:
    """Set the "encrypted" bit in every header (the content cannot be inspected, whatever it is)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(signature)
        while at != -1:
            out[at + offset] |= 0x01
            at = out.find(signature, at + 4)
    return bytes(out)


def _lying(data: bytes) -> bytes:
    """Declare a member's size smaller than what it expands to (both headers)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = out.find(signature)
        out[at + offset : at + offset + 4] = (100).to_bytes(4, "little")
    return bytes(out)


@pytest.mark.parametrize("name", ["dirty.tiff", "clean.tif", "dirty.svg", "dirty.odg"])
async def test_tiff_svg_odg_of_the_corpus_cleaned_by_mat2(scratch: Path, name: str) -> None:
    original = conformance_file(name, CORPUS).read_bytes()
    suffix = Path(name).suffix
    record, out = await clean(original, scratch, wrap_sealed_key=identity_wrap)
    assert record.sealed_reason is None, record.sealed_reason
    assert (
        findings(out, suffix=suffix, canaries=("jvoisin", "Julien Voisin", "000741709798", "OLYMPUS")) == []
    )
    if suffix == ".svg":
        assert out.lstrip().startswith(b"<?xml") and b"<svg" in out and b"<metadata" not in out
    if suffix.startswith(".tif"):
        assert out[:4] in (b"II*\x00", b"MM\x00*")


async def test_svg_script_and_metadata_do_not_survive_and_undrawable_svg_is_sealed(scratch: Path) -> None:
    svg = (
        '<?xml version="1.0"?>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 20 20">'
        f"<metadata><author>{dirty.AUTHOR}</author></metadata><title>{dirty.COMPANY}</title>"
        f"<script>alert('{dirty.JS}')</script><a href='file:///{dirty.USER_PATH}'>"
        '<rect width="10" height="10" fill="red"/></a></svg>'
    ).encode()
    record, out = await clean(svg, scratch, wrap_sealed_key=identity_wrap)
    assert record.kind is FileKind.SVG and record.sealed_reason is None
    assert findings(out, suffix=".svg", canaries=dirty.CANARIES) == []
    assert b"<script" not in out and b"href" not in out and b"<path" in out  # drawn anew
    weird = conformance_file("weird.svg", CORPUS).read_bytes()  # librsvg cannot draw it
    record, out = await clean(weird, scratch, wrap_sealed_key=identity_wrap)
    assert record.sealed_reason == "cleaner-failed" and out == b""


async def test_zip_gets_one_timeout_for_all_its_members(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleaners, "CLEAN_TIMEOUT_SECONDS", -1)  # the archive's time is already used up
    record, out = await clean(_zip([("a.txt", b"hello")]), scratch, wrap_sealed_key=identity_wrap)
    assert record.sealed_reason == "timeout" and out == b"" and os.listdir(scratch) == []


def _tar(members: list[tuple[str, bytes]], *, link: bool = False) -> bytes:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size, info.uname, info.gname, info.mtime = (
                len(body),
                "canaryzw",
                "Canary Bureau",
                1_700_000_000,
            )
            archive.addfile(info, io.BytesIO(body))
        if link:
            info = tarfile.TarInfo("passwd")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(info)
    return buffer.getvalue()


async def test_tar_members_cleaned_under_neutral_names_and_links_seal_it(scratch: Path) -> None:
    import tarfile

    names = ["home/canaryzw/张三的举报.docx", "张三/IMG_0001.jpg", "nested.zip"]
    bodies = [dirty.dirty_docx(), dirty.exif_jpeg(), _zip([("Canary.jpg", dirty.exif_jpeg())])]
    original = _tar(list(zip(names, bodies, strict=True)))
    canaries = (*dirty.CANARIES, "张三")
    assert findings(original, suffix=".tar", canaries=canaries)
    record, out = await clean(original, scratch, wrap_sealed_key=identity_wrap)
    assert record.kind is FileKind.TAR and record.sealed_reason is None
    assert findings(out, suffix=".tar", canaries=canaries) == []
    archive = tarfile.open(fileobj=io.BytesIO(out))
    assert archive.getnames() == ["1.docx", "2.jpg", "3.zip"]
    assert {(m.uname, m.gname, m.mtime, m.uid) for m in archive.getmembers()} == {("", "", 0, 0)}
    inner = archive.extractfile("2.jpg").read()  # type: ignore[union-attr]
    assert findings(inner, suffix=".jpg", canaries=canaries) == []
    assert "tar:members=3" in record.removed_metadata and "zip:members=1" in record.removed_metadata
    record, out = await clean(_tar([("a.txt", b"hello")], link=True), scratch, wrap_sealed_key=identity_wrap)
    assert record.sealed_reason == "archive-member" and out == b""
    assert os.listdir(scratch) == []
