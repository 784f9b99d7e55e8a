"""What attachment cleaning costs, per file type and per MB, beside a plain copy; and that a 200 MB video
upload through the real server still streams (server memory growth).

Usage: python bench/bench_cleaning.py [--runs 3] [--video-mb 200] [--skip-server]

Part 1 runs each sample through the pipeline (``store_attachment``: sniff, clean, encrypt; the ciphertext
is discarded) and, as the baseline, through a plain copy of the same bytes into the tmpfs and back (what
spooling alone costs). Part 2 starts `tipline serve` (real process, SQLite) and posts a 200 MB QuickTime
video (raw frames, so ffmpeg copies 200 MB) through the public form, sampling the server's VmRSS and the
tmpfs's use while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.attachments.pipeline import store_attachment  # noqa: E402
from service.platform.blobs import MemoryBlobStore  # noqa: E402
from tests.helpers import dirty  # noqa: E402

SCRATCH = Path(os.environ.get("TIPLINE_ATTACHMENT_SCRATCH_DIR", "/dev/shm"))  # noqa: S108 - the service's default
CHUNK = 256 * 1024


class DiscardStore(MemoryBlobStore):
    async def open_writer(self, blob_id: str):  # type: ignore[no-untyped-def]
        writer = await super().open_writer(blob_id)

        async def write(data: bytes) -> None:
            return None

        writer.write = write  # type: ignore[method-assign]
        return writer


def wrap(file_key: bytes, binding: str) -> bytes:
    return b"\x00" * 32  # HPKE wrapping is a constant cost per file, measured elsewhere


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), CHUNK):
        yield data[offset : offset + CHUNK]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *args], check=True)  # noqa: S603, S607


PCM = ["-c:a", "pcm_s16le"]


def video(seconds: int, container: str, codec: list[str], size: str = "640x360") -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"clip.{container}"
        ffmpeg(
            "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
            "-f", "lavfi", "-i", f"sine=duration={seconds}", "-ac", "1", *codec,
            "-metadata", "artist=Bench Canary", str(target),
        )  # fmt: skip
        return target.read_bytes()


def big_docx() -> bytes:
    """The crafted dirty DOCX plus a 2 MB photo with EXIF."""
    import zipfile

    from PIL import Image

    photo = io.BytesIO()
    Image.effect_noise((1600, 1200), 60).convert("RGB").save(photo, "JPEG", quality=95, exif=Image.Exif())
    out = io.BytesIO()
    source = zipfile.ZipFile(io.BytesIO(dirty.dirty_docx()))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in source.namelist():
            archive.writestr(
                name, photo.getvalue() if name == "word/media/image1.jpeg" else source.read(name)
            )
    return out.getvalue()


def text_pdf(pages: int) -> bytes:
    import pikepdf

    pdf = pikepdf.open(io.BytesIO(dirty.text_pdf()))
    for _ in range(pages - 1):
        pdf.pages.append(pdf.pages[0])
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def samples() -> list[tuple[str, bytes]]:
    from PIL import Image

    photo = io.BytesIO()
    Image.effect_noise((2400, 1800), 60).convert("RGB").save(photo, "JPEG", quality=95, exif=Image.Exif())
    heic = ROOT.parent / "shared" / "conformance" / "metadata" / "mat2" / "dirty.heic"
    found = [
        ("JPEG photo (own filter)", photo.getvalue()),
        ("DOCX, crafted (mat2)", dirty.dirty_docx()),
        ("DOCX + 2 MB photo (mat2)", big_docx()),
        ("PDF, crafted (mat2 -L)", dirty.dirty_pdf()),
        ("PDF, 50 text pages (mat2 -L)", text_pdf(50)),
        ("MP4 10 s mpeg4 (ffmpeg)", video(10, "mp4", ["-c:v", "mpeg4", "-q:v", "2", "-c:a", "aac"])),
        ("MOV 2 s raw frames (ffmpeg)", video(2, "mov", ["-c:v", "rawvideo", "-pix_fmt", "uyvy422", *PCM])),
    ]  # fmt: skip
    if heic.is_file():
        found.insert(1, ("HEIC photo (mat2/exiftool)", heic.read_bytes()))
    corpus = heic.parent
    for name, label in (
        ("dirty.tiff", "TIFF photo (mat2 redraws)"),
        ("dirty.svg", "SVG drawing (mat2 redraws)"),
        ("dirty.odg", "ODG drawing (pre-pass, mat2)"),
    ):
        if (corpus / name).is_file():
            found.append((label, (corpus / name).read_bytes()))
    found.append(("ZIP: DOCX+JPEG+photo+PDF (ours)", archive(photo.getvalue())))
    return found


def archive(photo: bytes) -> bytes:
    """A ZIP as a reporter might send it: a crafted DOCX, a JPEG with GPS, a 2400x1800 photo, a PDF."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("材料/举报.docx", dirty.dirty_docx())
        zipped.writestr("材料/IMG_0001.jpg", dirty.exif_jpeg())
        zipped.writestr("材料/IMG_0002.jpg", photo)
        zipped.writestr("材料/证据.pdf", dirty.dirty_pdf())
    return out.getvalue()


async def clean_once(data: bytes) -> float:
    started = time.perf_counter()
    await store_attachment(
        chunks(data), store=DiscardStore(), wrap_key=wrap, max_size=len(data) + 1, scratch_dir=SCRATCH
    )
    return time.perf_counter() - started


def copy_once(data: bytes) -> float:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
        path = Path(folder) / "copy"
        path.write_bytes(data)
        shutil.copyfile(path, Path(folder) / "copy2")
        _ = (Path(folder) / "copy2").read_bytes()
    return time.perf_counter() - started


def part_one(runs: int) -> None:
    print(f"{'file':32} {'size':>9} {'clean':>9} {'per MB':>9} {'plain copy':>10}")
    for label, data in samples():
        asyncio.run(clean_once(data))  # warm-up (imports, page cache)
        cleaned = statistics.median(asyncio.run(clean_once(data)) for _ in range(runs))
        copied = statistics.median(copy_once(data) for _ in range(runs))
        mb = len(data) / 2**20
        per_mb = f"{cleaned * 1000 / mb:7.0f}ms" if mb >= 1 else "      - "  # small files: fixed cost
        print(f"{label:32} {mb:7.2f}MB {cleaned * 1000:7.0f}ms {per_mb} {copied * 1000:8.1f}ms")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def shm_used_mb() -> int:
    stats = os.statvfs(SCRATCH)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize // 2**20


def multipart(fields: dict[str, str], boundary: str, path: Path) -> Iterator[bytes]:
    yield b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="clip.mov"\r\n'
        "Content-Type: video/quicktime\r\n\r\n"
    ).encode()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            yield block
    yield f"\r\n--{boundary}--\r\n".encode()


def part_two(video_mb: int) -> None:
    import httpx

    from service.citizen.guard import solve
    from tests.helpers import tipline_server
    from tests.helpers.web import hidden_fields

    frame = 640 * 360 * 2  # uyvy422: 2 bytes a pixel
    seconds = max(1, video_mb * 2**20 // (frame * 25))
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mov"
        ffmpeg(
            "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=640x360:rate=25", "-c:v", "rawvideo",
            "-pix_fmt", "uyvy422", str(clip),
        )  # fmt: skip
        size_mb = clip.stat().st_size / 2**20
        env = {
            **os.environ,
            "TIPLINE_DATA_DIR": str(Path(folder) / "data"),
            "TIPLINE_WEB_ATTACHMENT_MAX_BYTES": str(clip.stat().st_size + 2**20),
            "TIPLINE_WEB_POW_BITS": "12",
        }
        with (
            tipline_server(env, Path(folder) / "server.log") as server,
            httpx.Client(base_url=server.base_url, timeout=600) as client,
        ):
            pid = server.process.pid
            hidden = hidden_fields(client.get("/report").text)
            fields = {**hidden, "pow_nonce": solve(hidden["pow_challenge"], 12), "text": "基准测试：视频附件"}
            boundary = "b" + secrets.token_hex(12)
            before, shm_before = rss_kb(pid), shm_used_mb()
            peak, shm_peak = before, shm_before
            done = threading.Event()

            def sample() -> None:
                nonlocal peak, shm_peak
                while not done.is_set():
                    peak, shm_peak = max(peak, rss_kb(pid)), max(shm_peak, shm_used_mb())
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.perf_counter()
            response = client.post(
                "/report",
                content=multipart(fields, boundary, clip),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            elapsed = time.perf_counter() - started
            done.set()
            sampler.join()
            assert response.status_code == 200 and "查询码" in response.text, response.text[:500]
            print(
                f"{size_mb:.0f} MB MOV video through POST /report (ffmpeg clean): {elapsed:.1f} s, "
                f"{size_mb / elapsed:.0f} MB/s, server RSS growth {(peak - before) // 1024} MB "
                f"(target < 50 MB), tmpfs peak use {shm_peak - shm_before} MB"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--video-mb", type=int, default=200)
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    part_one(args.runs)
    if not args.skip_server:
        part_two(args.video_mb)


if __name__ == "__main__":
    main()
