"""``GET /datasets/{id}/annotations`` and ``GET /versions/{id}/annotations``: annotation
exports in ``format=coco|yolo|labelstudio|jsonl`` (JSON Lines by default), streamed.

What the format could not hold travels in the file where the format has room for it: a
``quiver.losses`` key at the end of COCO JSON, ``losses.txt`` in the YOLO zip.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from quiver.auth import Viewer
from quiver.http.endpoint import ViewerEndpoint
from quiver.resolvers.annotation_exports import (
    AnnotationExport,
    dataset_annotations,
    version_annotations,
)
from quiver.resolvers.presigned_downloads import content_disposition


def _response(export: AnnotationExport) -> Response:
    headers = {
        "Content-Disposition": content_disposition(export.filename),
        "Cache-Control": "private, no-store",
    }
    return StreamingResponse(export.chunks, headers=headers, media_type=export.media_type)


class DatasetAnnotations(ViewerEndpoint):
    """The working set's annotations; a dataset the caller cannot read is a 404."""

    async def respond(self, request: Request, viewer: Viewer) -> Response:
        export_format = request.query_params.get("format", "jsonl")
        export = await dataset_annotations(viewer, request.path_params["id"], export_format)
        return _response(export)


class VersionAnnotations(ViewerEndpoint):
    """A version's annotations; a version the caller cannot read is a 404."""

    async def respond(self, request: Request, viewer: Viewer) -> Response:
        export_format = request.query_params.get("format", "jsonl")
        export = await version_annotations(viewer, request.path_params["id"], export_format)
        return _response(export)
