"""CPU-bound work in Gunicorn's dirty workers: a separate pool of processes."""

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
    """Loaded once in each dirty worker; HTTP workers call its methods by name."""

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
    # A client per request: concurrent requests must not share one DirtyClient.
    async with DirtyClient(os.environ["GUNICORN_DIRTY_SOCKET"], timeout=60) as client:
        answer = await client.execute_async("heavy:Burner", "burn", n)
    return {"pid": os.getpid(), **answer}
# --8<-- [end:endpoint]


# --8<-- [start:context-client]
@app.get("/cpu/dirty-context-client")
async def dirty_context_client(n: int = 1_000_000) -> dict[str, int]:
    # The shortcut from Gunicorn's docs keeps one client per context. Every request
    # runs in a new context, so each one opens a connection that nothing closes.
    client = await get_dirty_client_async()
    answer = await client.execute_async("heavy:Burner", "burn", n)
    return {"pid": os.getpid(), **answer}
# --8<-- [end:context-client]
