from fastapi import FastAPI

app = FastAPI()  # no middleware: the server alone decides what an error logs


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("something broke")
