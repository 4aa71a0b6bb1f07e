"""An app with a deliberate leak: each call to /leak/{mib} keeps that much memory for good."""

import os

from fastapi import FastAPI

app = FastAPI()
KEPT: list[bytes] = []  # module-level, so it lives as long as the worker process


@app.get("/")
async def index() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/leak/{mib}")
async def leak(mib: int) -> dict[str, int]:
    KEPT.append(os.urandom(mib * 2**20))  # random bytes: every page is really used
    return {"pid": os.getpid(), "kept_mib": sum(map(len, KEPT)) // 2**20}
