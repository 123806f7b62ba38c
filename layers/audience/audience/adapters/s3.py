"""The data bucket: streamed reads, small text objects, streamed uploads."""

from __future__ import annotations

import io
from typing import IO, Any, cast

from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client, error_code


class S3ObjectStore:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def etag(self, key: str) -> str:
        return str(self._call("head_object", Key=key)["ETag"]).strip('"')

    def open(self, key: str) -> IO[bytes]:
        return cast(IO[bytes], io.BufferedReader(_Body(self._call("get_object", Key=key)["Body"]), 1 << 20))

    def read_text(self, key: str) -> str | None:
        data = self.read_bytes(key)
        return None if data is None else data.decode()

    def read_bytes(self, key: str) -> bytes | None:
        try:
            body = self._call("get_object", Key=key)["Body"]
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return bytes(body.read())

    def put_text(self, key: str, text: str) -> None:
        content_type = "text/html" if key.endswith(".html") else "application/json"
        self._call("put_object", Key=key, Body=text.encode(), ContentType=content_type)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call("put_object", Key=key, Body=data, ContentType="application/octet-stream")

    def keys(self, prefix: str) -> list[str]:
        pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        try:
            return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        except ClientError as exc:
            raise as_transient(exc) from exc

    def put_file(self, key: str, file: IO[str]) -> None:
        client("s3").upload_fileobj(_Encoded(file), self.bucket, key)

    def forget_history(self, key: str, keep_current: bool = True) -> int:
        """Delete the object's earlier versions (the bucket is versioned), and with
        ``keep_current=False`` the object too; returns how many versions were deleted."""
        pages = client("s3").get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key)
        deleted = 0
        try:
            for page in pages:
                for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if version["Key"] != key or (keep_current and version.get("IsLatest")):
                        continue
                    self._call("delete_object", Key=key, VersionId=version["VersionId"])
                    deleted += 1
        except ClientError as exc:
            raise as_transient(exc) from exc
        return deleted

    def _call(self, operation: str, **request: Any) -> Any:
        try:
            return getattr(client("s3"), operation)(Bucket=self.bucket, **request)
        except ClientError as exc:
            raise as_transient(exc) from exc


class _Body(io.RawIOBase):
    """botocore's StreamingBody as a raw stream that reports end-of-file instead of raising
    once urllib3 has closed it (gzip reads once more after the end of its data)."""

    def __init__(self, body: Any) -> None:
        self.body, self.done = body, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.done:
            return 0
        try:
            data = self.body.read(len(buffer))
        except ValueError:  # read of closed file: the body was fully read
            data = b""
        if not data:
            self.done = True
            return 0
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.body.close()
        super().close()


class _Encoded:
    """A text file read as UTF-8 bytes, for boto3's streamed (multipart) upload."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file

    def read(self, size: int = -1) -> bytes:
        return self.file.read(size if size is None or size < 0 else max(1, size // 4)).encode()
