"""Calling another service: one httpx.AsyncClient per worker, or one per request."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request

UPSTREAM = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:9000")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One client per worker: its connection pool keeps connections open between requests.
    async with httpx.AsyncClient(base_url=UPSTREAM) as client:
        app.state.client = client
        yield  # the client (and its connections) closes at shutdown


app = FastAPI(lifespan=lifespan)


@app.get("/shared")
async def shared(request: Request) -> dict[str, int]:
    response = await request.app.state.client.get("/")
    return {"upstream_status": response.status_code}


@app.get("/per-request")
async def per_request() -> dict[str, int]:
    # The pattern to avoid: a new client, so a new connection (and TLS handshake), every time.
    async with httpx.AsyncClient(base_url=UPSTREAM) as client:
        response = await client.get("/")
    return {"upstream_status": response.status_code}
