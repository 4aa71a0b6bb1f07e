"""Independent calls with asyncio.gather, return_exceptions, and TaskGroup."""

import asyncio

from fastapi import FastAPI

app = FastAPI()
finished: list[str] = []  # calls that ran to the end, in this worker process


async def call(name: str, seconds: float, fail: bool = False) -> str:
    # Stands in for an HTTP or database call that takes `seconds`.
    await asyncio.sleep(seconds)
    if fail:
        raise RuntimeError(f"{name} failed")
    finished.append(name)
    return name


@app.get("/finished")
async def finished_calls() -> list[str]:
    return finished


# --8<-- [start:sequential-vs-gather]
@app.get("/sequential")
async def sequential(seconds: float = 1.0) -> list[str]:
    # Each await waits for the previous call: about 3 x seconds.
    a = await call("a", seconds)
    b = await call("b", seconds)
    c = await call("c", seconds)
    return [a, b, c]


@app.get("/gather")
async def gathered(seconds: float = 1.0) -> list[str]:
    # The three calls wait at the same time: about 1 x seconds.
    return await asyncio.gather(
        call("a", seconds), call("b", seconds), call("c", seconds)
    )
# --8<-- [end:sequential-vs-gather]


# --8<-- [start:failures]
@app.get("/gather-failing")
async def gather_failing(
    seconds: float = 1.0, return_exceptions: bool = False
) -> list[str]:
    results = await asyncio.gather(
        call("gather-fails", seconds / 2, fail=True),
        call("gather-slow", seconds),
        return_exceptions=return_exceptions,
    )
    # With return_exceptions=True the exception is one of the results, not raised.
    return [f"error: {r}" if isinstance(r, Exception) else r for r in results]


@app.get("/taskgroup-failing")
async def taskgroup_failing(seconds: float = 1.0) -> list[str]:
    # A TaskGroup cancels the other tasks when one fails, then raises an ExceptionGroup.
    async with asyncio.TaskGroup() as tg:
        tg.create_task(call("taskgroup-fails", seconds / 2, fail=True))
        slow = tg.create_task(call("taskgroup-slow", seconds))
    return [slow.result()]
# --8<-- [end:failures]
