"""Files in the server database: uploaded batch input, and the output and error files batches write.

A file belongs to a project; admin keys and the open mode see every project's files. Reading returns
the stored row (``content`` only when asked for); :func:`file_public` shapes a row as OpenAI's
``file`` object.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from groundglass.server import db

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from groundglass.server.auth import Principal


class FileStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_file(
        self, project: str, purpose: str, filename: str, content: bytes, conn: Connection | None = None
    ) -> dict[str, Any]:
        """Store ``content``; inside ``conn``'s transaction when given (a batch's results and its end
        are written at once). Returns the public ``file`` object."""
        row = {
            "id": db.new_id("file"),
            "project": project,
            "purpose": purpose,
            "filename": filename,
            "bytes": len(content),
            "created_at": time.time(),
            "content": content,
        }
        row = db.fit(db.files, row)
        if conn is not None:
            conn.execute(insert(db.files).values(**row))
        else:
            with self.engine.begin() as c:
                c.execute(insert(db.files).values(**row))
        return file_public(row)

    def get_file(self, who: Principal, file_id: str, *, content: bool = False) -> dict[str, Any] | None:
        f = db.files.c
        cols = [f.id, f.project, f.purpose, f.filename, f.bytes, f.created_at] + (
            [f.content] if content else []
        )
        q = select(*cols).where(f.id == file_id)
        if not who.admin:
            q = q.where(f.project == who.project)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return dict(row._mapping) if row else None

    def list_files(
        self, who: Principal, purpose: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        f = db.files.c
        q = select(f.id, f.project, f.purpose, f.filename, f.bytes, f.created_at).order_by(
            f.created_at.desc()
        )
        if not who.admin:
            q = q.where(f.project == who.project)
        if purpose:
            q = q.where(f.purpose == purpose)
        with self.engine.connect() as conn:
            return [file_public(dict(r._mapping)) for r in conn.execute(q.limit(limit))]

    def delete_file(self, who: Principal, file_id: str) -> bool:
        f = db.files.c
        cond = [f.id == file_id] + ([] if who.admin else [f.project == who.project])
        with self.engine.begin() as conn:
            return conn.execute(db.files.delete().where(*cond)).rowcount == 1


def file_public(row: dict[str, Any]) -> dict[str, Any]:
    """A stored file row as OpenAI's ``file`` object."""
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": int(row["created_at"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }
