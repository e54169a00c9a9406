"""The HTTP ceiling for `invite_throughput`: FastAPI, one pydantic body, no work at all.

Served by uvicorn exactly as `porchlight api` is (uvloop, httptools, no access log), so the
rate it reaches under the same client is the most any endpoint of ours could reach here.
"""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Body(BaseModel):
    email: str


@app.post("/v1/workspaces/{ws}/invitations", status_code=201)
async def invite(ws: str, body: Body) -> dict[str, str]:
    return {"email": body.email}
