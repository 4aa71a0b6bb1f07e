import os

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("app_requests", "Requests served by GET /")
# One per running worker; "livesum" adds up the live workers' values only.
LIVE_WORKERS = Gauge("app_live_workers", "Workers running", multiprocess_mode="livesum")
LIVE_WORKERS.set(1)

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, int]:
    REQUESTS.inc()
    return {"pid": os.getpid()}


@app.get("/metrics")
def metrics() -> Response:
    """This process's numbers, or the sum over every worker when multiprocess mode is on."""
    registry = REGISTRY
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()  # a new one per scrape, read from the workers' files
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
