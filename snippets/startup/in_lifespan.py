"""Don't: migrations in the lifespan, with no lock. Every worker starts them at once."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI
from migrate import apply_pending


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        applied = apply_pending(conn)
    print(f"process {os.getpid()} applied migrations: {applied}", flush=True)
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, int]:
    return {"pid": os.getpid()}
