"""The app of the limits page: it counts what it receives and how many requests it holds."""

import asyncio
import os

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

app = FastAPI()
in_flight = 0  # requests this worker is handling right now
most_in_flight = 0  # the most it has handled at once


def enter() -> None:
    global in_flight, most_in_flight
    in_flight += 1
    most_in_flight = max(most_in_flight, in_flight)


def leave() -> None:
    global in_flight
    in_flight -= 1


@app.get("/")
async def pid() -> dict:
    return {"pid": os.getpid(), "in_flight": in_flight, "most_in_flight": most_in_flight}


@app.post("/upload")
async def upload(request: Request) -> dict:
    received = 0
    async for chunk in request.stream():  # reads the whole body, piece by piece
        received += len(chunk)
    return {"received": received, "pid": os.getpid()}


@app.get("/hold")
async def hold(seconds: float = 10) -> dict:
    enter()
    try:
        await asyncio.sleep(seconds)  # a slow request: an awaited call to something slow
    finally:
        leave()
    return {"pid": os.getpid()}


@app.get("/together")
async def together(n: int, seconds: float = 30) -> dict:
    """Answers once n requests are in this worker at the same time (or after `seconds`)."""
    enter()
    try:
        for _ in range(int(seconds * 20)):
            if most_in_flight >= n:
                break
            await asyncio.sleep(0.05)
    finally:
        leave()
    return {"most_in_flight": most_in_flight, "pid": os.getpid()}


@app.get("/download")
async def download(mb: int = 64) -> StreamingResponse:
    """A large response, sent in 64 KiB pieces as the client takes them."""

    async def pieces():
        enter()
        try:
            for _ in range(mb * 16):
                yield b"x" * 65536
        finally:
            leave()

    return StreamingResponse(pieces(), media_type="application/octet-stream")
