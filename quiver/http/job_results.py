"""``GET /jobs/{id}/result``: the stored result of an export job, for whoever can read the job."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from quiver.auth import Viewer
from quiver.http.endpoint import ViewerEndpoint
from quiver.resolvers.access import job_for
from quiver.resolvers.errors import Refused
from quiver.resolvers.presigned_downloads import content_disposition
from quiver.storage.blobs import blob_key


class JobResult(ViewerEndpoint):
    """A job the caller cannot read is a 404, like one that does not exist."""

    async def respond(self, request: Request, viewer: Viewer) -> Response:
        job = await job_for(viewer, request.path_params["id"], ("id",))
        result = job.result if isinstance(job.result, dict) else {}
        sha256 = result.get("sha256")
        if job.status != "SUCCEEDED" or not isinstance(sha256, str):
            raise Refused.not_found(("id",), "This job has no stored result to download")
        etag = f'"{sha256}"'
        headers = {
            "ETag": etag,
            "Content-Length": str(result.get("size", "")),
            "Content-Disposition": content_disposition(str(result.get("fileName") or "result")),
            "Cache-Control": "private, max-age=0, must-revalidate",
        }
        media_type = str(result.get("contentType") or "application/octet-stream")
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            return Response(headers=headers, media_type=media_type)
        chunks = await self.storage.open(blob_key(sha256))
        return StreamingResponse(chunks, headers=headers, media_type=media_type)
