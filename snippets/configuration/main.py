import os
import threading

from fastapi import FastAPI, Request

app = FastAPI()

# /rendezvous answers only when three calls are inside it at the same moment,
# so it proves that three threads run them (each waits at most 10 s).
three_at_once = threading.Barrier(3, timeout=10)


@app.get("/")
async def index(request: Request) -> dict[str, object]:
    # Which worker answered, and whether the request came over HTTPS.
    return {"pid": os.getpid(), "scheme": request.url.scheme}


@app.get("/rendezvous")
def rendezvous() -> dict[str, object]:
    # A `def` endpoint: FastAPI runs each call in a thread of its thread pool.
    three_at_once.wait()
    thread = threading.current_thread()
    return {"thread": thread.name, "thread_id": thread.ident}
