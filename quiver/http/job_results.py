"""``GET /jobs/{id}/result``: the stored result of an export job, for whoever can read the
job, or for whoever holds a signed link to it (``Job.result.downloadUrl``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from quiver.auth import Viewer
from quiver.http.endpoint import SignedLinkEndpoint
from quiver.models import Job
from quiver.resolvers.access import job_for
from quiver.resolvers.job_results import stored_result
from quiver.resolvers.presigned_downloads import content_disposition
from quiver.resolvers.signed_links import job_behind_link
from quiver.storage.blobs import blob_key


class JobResult(SignedLinkEndpoint):
    """Without a signed link, a job the caller cannot read is a 404, like one that does not
    exist."""

    async def follow_link(self, request: Request) -> Response:
        job = await job_behind_link(self.settings, request.path_params["id"], request.query_params)
        return await self.serve(request, job)

    async def respond(self, request: Request, viewer: Viewer) -> Response:
        return await self.serve(request, await job_for(viewer, request.path_params["id"], ("id",)))

    async def serve(self, request: Request, job: Job) -> Response:
        result = await stored_result(job)
        etag = f'"{result.sha256}"'
        headers = {
            "ETag": etag,
            "Content-Length": str(result.size),
            "Content-Disposition": content_disposition(result.file_name),
            "Cache-Control": "private, max-age=0, must-revalidate",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            return Response(headers=headers, media_type=result.content_type)
        chunks = await self.storage.open(blob_key(result.sha256))
        return StreamingResponse(chunks, headers=headers, media_type=result.content_type)
