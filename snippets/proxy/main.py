from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/")
async def whoami(request: Request) -> dict[str, str | None]:
    # What the app believes about the request, and the raw header the proxy sent.
    return {
        "client": request.client.host if request.client else None,
        "scheme": request.url.scheme,
        "url": str(request.url_for("whoami")),
        "x_forwarded_for": request.headers.get("x-forwarded-for"),
    }
