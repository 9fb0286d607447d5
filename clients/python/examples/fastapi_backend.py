"""A FastAPI backend that starts generations for signed-in users and publishes their
progress: the README's example (its tests run it). Start it with
`AUTH_URL=http://localhost:8000 AUTHSTREAM_SECRET=... uvicorn fastapi_backend:app`."""

import asyncio
import os

from fastapi import BackgroundTasks, Depends, FastAPI

from authstream import AsyncServiceClient, Claims
from authstream.fastapi import BearerAuth, install

authstream = AsyncServiceClient(os.environ["AUTH_URL"], "backend", os.environ["AUTHSTREAM_SECRET"])
app = FastAPI()
install(app)  # refusals as problem+json
signed_in = BearerAuth(authstream)


@app.post("/jobs")
async def start(tasks: BackgroundTasks, user: Claims = Depends(signed_in)) -> dict[str, str]:
    generation_id = await authstream.create_generation(user.user_id)
    tasks.add_task(work, generation_id)
    return {"generation_id": generation_id}  # the front end streams it (clients/js)


async def work(generation_id: str) -> None:
    for i, stage in enumerate(["parsing", "extracting", "writing"]):
        await asyncio.sleep(0.1)  # the real work
        await authstream.publish(generation_id, "processing", stage, i / 3, f"{stage}...")
    await authstream.publish(generation_id, "completed", "done", 1.0, "Done")
