"""Importing results or needs from a spreadsheet (.xlsx, .csv) or JSON Lines, with a report of every bad row."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from starlette.responses import Response

from recommender.records import SUPPORTED_SUFFIXES, RecordFileError
from service.api.deps import ServicesDep, SessionDep
from service.core.errors import ServiceError
from service.core.imports import import_file
from service.web.auth import BrokerDep, actor
from service.web.routes import web_router
from service.web.templating import render

router = web_router()
CHUNK = 1 << 20


@router.get("/upload")
def upload_page(request: Request, found: BrokerDep) -> Response:
    return render(request, "upload.html", nav="upload", kind="result", suffixes=SUPPORTED_SUFFIXES)


@router.post("/upload")
def upload_action(request: Request, session: SessionDep, services: ServicesDep, found: BrokerDep,
                  file: Annotated[UploadFile, File()], kind: Annotated[str, Form(max_length=10)] = "result",
                  skip_invalid: Annotated[str, Form(max_length=5)] = "",
                  replace: Annotated[str, Form(max_length=5)] = "") -> Response:
    kind = "need" if kind == "need" else "result"
    name = Path(file.filename or "upload").name
    suffix = Path(name).suffix.lower()
    page = {"nav": "upload", "kind": kind, "suffixes": SUPPORTED_SUFFIXES, "name": name,
            "skip_invalid": bool(skip_invalid), "replace": bool(replace)}
    if suffix not in SUPPORTED_SUFFIXES:
        return render(request, "upload.html", status=415, problem=f"不支持的文件类型「{suffix or name}」：请上传 "
                      f"{'、'.join(SUPPORTED_SUFFIXES)} 文件", **page)
    limit = services.settings.max_upload_bytes
    with tempfile.TemporaryDirectory(prefix="techmatch-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        size = 0
        with path.open("wb") as handle:
            while chunk := file.file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    problem = f"文件超过 {limit // (1 << 20)} MB 的上限，请拆分后分批导入"
                    return render(request, "upload.html", status=413, problem=problem, **page)
                handle.write(chunk)
        try:
            report = import_file(session, services.sync, kind, path, name, skip_invalid=bool(skip_invalid),
                                 replace=bool(replace))
        except RecordFileError as exc:
            return render(request, "upload.html", status=422, errors=exc.errors, total_rows=exc.total_rows, **page)
        except ServiceError as exc:
            return render(request, "upload.html", status=exc.status, problem=exc.message, **page)
    actor(request, found).log(session, "upload", f"{kind}s: {report.written} written, {len(report.skipped)} skipped "
                              f"from {name}")
    return render(request, "upload.html", report=report, **page)
