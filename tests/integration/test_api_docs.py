"""The OpenAPI page works offline (Swagger UI served by the service itself, nothing from elsewhere) and every
operation has a summary written for people, not FastAPI's title-cased function name."""

from __future__ import annotations

import re

from fastapi import routing

from tests.helpers.app import Harness


def _app(harness: Harness):  # type: ignore[no-untyped-def]
    return harness.client._transport.app  # noqa: SLF001 - the ASGI app behind the harness client


async def test_docs_page_loads_only_its_own_assets(harness: Harness) -> None:
    page = await harness.client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references, "the page names its script and styles"
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
    assert "http://" not in page.text and "https://" not in page.text
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self'" in csp and "default-src 'none'" in csp
    for ref in references:
        asset = await harness.client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 1000, ref
    js = await harness.client.get("/docs/static/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert (await harness.client.get("/docs/static/..%2Fcore.py")).status_code == 404
    assert (await harness.client.get("/docs/static/redoc.standalone.js")).status_code == 404
    assert (await harness.client.get("/redoc")).status_code == 404
    schema = await harness.client.get("/openapi.json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")


async def test_every_operation_has_a_written_summary(harness: Harness) -> None:
    contexts = [c for c in routing.iter_route_contexts(_app(harness).routes) if c.include_in_schema]
    assert len(contexts) > 50
    generated = [c.path for c in contexts if not c.summary or c.summary == c.name.replace("_", " ").title()]
    assert generated == [], f"operations without a written summary: {generated}"
    schema = (await harness.client.get("/openapi.json")).json()
    summaries = [op["summary"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(summaries) == len(set(summaries)), "two operations share a summary"
    # one language, consistently: English (the API's tags and descriptions are English)
    assert all(re.fullmatch(r"[A-Z][\x20-\x7e]+", s) for s in summaries), summaries
