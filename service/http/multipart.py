"""Incremental multipart/form-data parsing straight from the request stream.

Starlette's ``request.form()`` spools large files to plaintext temporary files; this parser never does. The
body is fed to python-multipart's low-level push parser one network chunk at a time, and each part is
handed to the caller as it arrives: small text fields are read whole (with a cap), files as an async
iterator of chunks that the caller encrypts and stores as they come. Nothing is kept but the current
chunk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header


class MalformedForm(ValueError):
    """The body is not well-formed multipart/form-data."""


class BodyTooLarge(ValueError):
    """The body is larger than allowed."""


class FieldTooLarge(ValueError):
    """A text field is longer than allowed."""


@dataclass
class Part:
    name: str
    filename: str | None  # None for plain fields; "" when a file input was left empty
    content_type: str
    _form: StreamingForm = field(repr=False)
    _finished: bool = False

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self._finished:
            kind, data = await self._form._next_event()
            if kind == "data":
                yield data
            elif kind == "end":
                self._finished = True
            else:  # pragma: no cover - the parser never interleaves parts
                raise MalformedForm("unexpected event inside a part")

    async def read_text(self, limit: int) -> str:
        buffer = bytearray()
        async for chunk in self.chunks():
            buffer += chunk
            if len(buffer) > limit:
                await self.drain()
                raise FieldTooLarge(self.name)
        try:
            return buffer.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedForm("a field is not UTF-8") from None

    async def drain(self) -> None:
        async for _ in self.chunks():
            pass


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise MalformedForm("not multipart/form-data")
    boundary = options[b"boundary"]
    if len(boundary) > 200:
        raise MalformedForm("boundary too long")
    return boundary


class StreamingForm:
    def __init__(self, stream: AsyncIterator[bytes], content_type: str, *, max_body: int) -> None:
        self._stream = aiter(stream)
        self._max_body = max_body
        self._size = 0
        self._events: deque[tuple[str, object]] = deque()
        self._done = False
        self._ended = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}

        def on_part_begin() -> None:
            self._headers = {}

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self._header_field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self._header_value += data[start:end]

        def on_header_end() -> None:
            name = bytes(self._header_field).decode("latin-1").lower()
            self._headers[name] = bytes(self._header_value)
            self._header_field.clear()
            self._header_value.clear()

        def on_headers_finished() -> None:
            self._events.append(("headers", dict(self._headers)))

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if end > start:
                self._events.append(("data", bytes(data[start:end])))

        def on_part_end() -> None:
            self._events.append(("end", None))

        def on_end() -> None:
            self._ended = True

        callbacks = {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        }
        self._parser = MultipartParser(boundary_of(content_type), callbacks)  # type: ignore[arg-type]
        self._current: Part | None = None

    async def _next_event(self) -> tuple[str, object]:
        while not self._events:
            if self._done:
                raise MalformedForm("the body ended inside a part")
            try:
                chunk = await anext(self._stream)
            except StopAsyncIteration:
                self._done = True
                self._parser.finalize()
                continue
            self._size += len(chunk)
            if self._size > self._max_body:
                raise BodyTooLarge("body too large")
            try:
                self._parser.write(chunk)
            except Exception as exc:  # python-multipart raises its own error types
                raise MalformedForm("malformed multipart body") from exc
        kind, data = self._events.popleft()
        return kind, data  # type: ignore[return-value]

    async def parts(self) -> AsyncIterator[Part]:
        while True:
            if self._current is not None and not self._current._finished:
                await self._current.drain()
            if not self._events and (self._ended or self._done):
                return
            try:
                kind, data = await self._next_event()
            except MalformedForm:
                if self._ended:
                    return
                raise
            if kind != "headers":
                raise MalformedForm("data outside a part")
            headers: dict[str, bytes] = data  # type: ignore[assignment]
            disposition, options = parse_options_header(headers.get("content-disposition", b""))
            if disposition != b"form-data" or b"name" not in options:
                raise MalformedForm("part without a form-data name")
            name = options[b"name"].decode("utf-8", "replace")
            raw_filename = options.get(b"filename")
            filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
            content_type = headers.get("content-type", b"").decode("latin-1")
            self._current = Part(name=name, filename=filename, content_type=content_type, _form=self)
            yield self._current

    async def discard_rest(self) -> None:
        """Read and drop whatever is left of the body (after an error, so the client gets its answer)."""
        async for part in self.parts():
            await part.drain()
