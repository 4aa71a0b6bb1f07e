"""CPU-bound work in Gunicorn's dirty workers: a separate pool of processes next to the app."""

import os

from fastapi import FastAPI
from gunicorn.dirty import DirtyApp, DirtyClient, get_dirty_client_async


def burn(n: int) -> int:
    # The same pure-Python arithmetic as cpu.py.
    total = 0
    for i in range(n):
        total += i * i
    return total

# --8<-- [start:dirty-app]
class Burner(DirtyApp):
    """Loaded once in each dirty worker process; HTTP workers call its methods by name."""

    def init(self) -> None:
        # Load models, open pools: runs in the dirty worker after fork.
        self.pid = os.getpid()

    def burn(self, n: int) -> dict[str, int]:
        return {"dirty_pid": self.pid, "result": burn(n)}
# --8<-- [end:dirty-app]


app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"ping": "pong"}


# --8<-- [start:endpoint]
@app.get("/cpu/dirty")
async def dirty(n: int = 1_000_000) -> dict[str, int]:
    # One connection per request: a DirtyClient must not be shared by concurrent requests.
    async with DirtyClient(os.environ["GUNICORN_DIRTY_SOCKET"], timeout=60) as client:
        answer = await client.execute_async("heavy:Burner", "burn", n)
    return {"pid": os.getpid(), **answer}
# --8<-- [end:endpoint]


# --8<-- [start:context-client]
@app.get("/cpu/dirty-context-client")
async def dirty_context_client(n: int = 1_000_000) -> dict[str, int]:
    # The shortcut from Gunicorn's docs keeps one client per context; every request runs in a
    # new context, so every request opens a connection to the arbiter and nothing closes it.
    client = await get_dirty_client_async()
    answer = await client.execute_async("heavy:Burner", "burn", n)
    return {"pid": os.getpid(), **answer}
# --8<-- [end:context-client]
