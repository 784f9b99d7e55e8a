"""The API's contract: documented in OpenAPI, and no input ever produces a 500."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.app import Harness

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
tip_like = st.fixed_dictionaries(
    {},
    optional={
        "text": st.one_of(st.text(max_size=200), json_values),
        "anonymous": json_values,
        "accused": st.one_of(st.dictionaries(st.sampled_from(["name", "unit", "position", "rank", "region", "x"]), json_values), json_values),
        "incident": json_values,
        "category_hint": st.one_of(st.sampled_from(["interference", "other", "bogus"]), json_values),
        "submitter": st.one_of(st.dictionaries(st.sampled_from(["name", "phone", "email", "id_number", "address"]), json_values), json_values),
    },
)


async def test_openapi_documents_every_staff_operation(harness: Harness) -> None:
    schema = (await harness.client.get("/openapi.json")).json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("responses"), (method, path)
            if path.startswith("/api/v1/") and path != "/api/v1/tips" and "security" in operation:
                assert "401" in operation["responses"], (method, path)
    tips = schema["paths"]["/api/v1/tips"]["post"]
    assert {"201", "413", "422"} <= set(tips["responses"])


async def test_no_input_produces_a_server_error(harness: Harness) -> None:
    import asyncio

    # Hypothesis drives a plain function: it runs in a thread and hands each request to this test's loop,
    # the one the harness's client lives on (not whatever loop the main thread happens to have).
    loop = asyncio.get_running_loop()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.one_of(tip_like, json_values))
    def check(body: object) -> None:
        response = asyncio.run_coroutine_threadsafe(
            harness.client.post("/api/v1/tips", content=json.dumps(body), headers={"content-type": "application/json"}),
            loop,
        ).result()
        assert response.status_code in (201, 413, 422), (body, response.status_code, response.text)

    await asyncio.to_thread(check)
