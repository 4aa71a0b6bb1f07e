"""Work after the response: a lost fire-and-forget task, and two ways not to lose it."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import BackgroundTasks, FastAPI

OUTBOX = Path(os.environ.get("OUTBOX_DIR", "outbox"))


async def publish(event_id: int) -> None:
    # Stands in for publishing to a broker: it takes a while, then has an effect.
    await asyncio.sleep(4)
    await asyncio.to_thread(OUTBOX.joinpath(f"{event_id}.published").write_text, "ok\n")


# --8<-- [start:lifespan]
background_tasks: set[asyncio.Task[None]] = set()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await asyncio.to_thread(OUTBOX.mkdir, exist_ok=True)
    yield
    # Shutdown: wait, with a bound, for the tasks this worker still owns.
    if background_tasks:
        await asyncio.wait(background_tasks, timeout=20)
# --8<-- [end:lifespan]


app = FastAPI(lifespan=lifespan)


# --8<-- [start:forget]
@app.post("/events/{event_id}/forget", status_code=202)
async def forget(event_id: int) -> dict[str, int]:
    asyncio.create_task(publish(event_id))  # no reference kept; nobody waits for it
    return {"accepted": event_id}
# --8<-- [end:forget]


# --8<-- [start:kept]
@app.post("/events/{event_id}/kept", status_code=202)
async def kept(event_id: int) -> dict[str, int]:
    task = asyncio.create_task(publish(event_id))
    background_tasks.add(task)  # a strong reference until the task is done
    task.add_done_callback(background_tasks.discard)
    return {"accepted": event_id}
# --8<-- [end:kept]


# --8<-- [start:background]
@app.post("/events/{event_id}/background", status_code=202)
async def background(event_id: int, tasks: BackgroundTasks) -> dict[str, int]:
    tasks.add_task(publish, event_id)  # runs after the response has been sent
    return {"accepted": event_id}
# --8<-- [end:background]
