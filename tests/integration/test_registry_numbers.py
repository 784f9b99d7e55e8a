"""Registry numbers stay distinct and increasing under concurrency, without gaps."""

from __future__ import annotations

import asyncio
import re

from tests.helpers.app import running_app


async def test_200_concurrent_submissions_get_200_distinct_numbers(tmp_path, fresh_database_url: str) -> None:  # type: ignore[no-untyped-def]
    async with running_app(tmp_path, fresh_database_url, registry_prefix="QA") as harness:

        async def one(i: int) -> str:
            response = await harness.client.post(
                "/api/v1/tips", json={"text": f"并发举报第{i}条：民警吃拿卡要。"}
            )
            assert response.status_code == 201, response.text
            return response.json()["registry_number"]

        numbers = await asyncio.gather(*(one(i) for i in range(200)))
    assert len(set(numbers)) == 200
    assert all(re.fullmatch(r"QA-\d{4}-\d{6}", n) for n in numbers)
    sequence = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert sequence == list(range(1, 201))  # no gaps
