"""A task started and forgotten: nothing keeps a reference to it, so it can be garbage."""

import asyncio
import gc

from fastapi import FastAPI

app = FastAPI()


async def consume(queue: asyncio.Queue[str]) -> None:
    while True:
        print("consumed", await queue.get(), flush=True)


@app.post("/consumers", status_code=202)
async def start_consumer() -> dict[str, str]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    asyncio.create_task(consume(queue))  # the mistake: no reference kept to the task
    return {"started": "consumer"}


@app.post("/gc")
async def collect() -> dict[str, int]:
    # Stands in for the garbage collector's next full pass, which a real server runs at a
    # time no one chooses (here, on request, so that the test need not wait for it).
    return {"collected": gc.collect()}
