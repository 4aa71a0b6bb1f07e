"""The app under load: a cheap endpoint and one that spends a little CPU per request."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "Hello from FastAPI"}


@app.get("/work")
def work() -> dict[str, int]:
    # A little pure-Python work (think: building a large response). A `def`
    # endpoint runs in the thread pool; the GIL still lets one process use one core for it.
    return {"total": sum(i * i for i in range(20_000))}
