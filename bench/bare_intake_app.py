"""Baseline for bench_intake: a bare FastAPI endpoint that only parses the same JSON and answers 201."""

from fastapi import FastAPI

from service.intake.schemas import TipIn

app = FastAPI()


@app.post("/api/v1/tips", status_code=201)
async def parse_only(tip: TipIn) -> dict[str, str]:
    return {"receipt": "0", "registry_number": "0"}
