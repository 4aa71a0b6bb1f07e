"""One app, several worker processes: what each worker has for itself."""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI


# --8<-- [start:pool]
class Pool:
    """Stands in for a database or HTTP connection pool: it remembers who created it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.id = uuid.uuid4().hex[:8]  # one id per pool object
        self.created_in = os.getpid()  # the process that opened its connections

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "created_in": self.created_in, "size": self.size}


import_time_pool = Pool(size=10)  # created where the module is imported


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Runs in each worker process, after the fork, inside that worker's event loop.
    app.state.pool = Pool(size=10)
    yield
# --8<-- [end:pool]


app = FastAPI(lifespan=lifespan)

# --8<-- [start:counter]
hits = 0  # module-level state: every worker process has its own copy


@app.post("/hit")
async def hit() -> dict[str, int]:
    global hits
    hits += 1
    return {"pid": os.getpid(), "hits": hits}
# --8<-- [end:counter]


@app.get("/pools")
async def pools() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "master": os.getppid(),
        "import_time_pool": import_time_pool.describe(),
        "lifespan_pool": app.state.pool.describe(),
    }


# --8<-- [start:data]
# Read-only data loaded at import, like a model or a lookup table: a million ints.
TABLE = [i * 7 for i in range(1_000_000)]


@app.get("/table/sum")
async def table_sum() -> dict[str, int]:
    # Only reads TABLE, yet each int it touches gets its reference count updated.
    return {"pid": os.getpid(), "sum": sum(TABLE)}
# --8<-- [end:data]
