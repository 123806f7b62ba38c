"""``GET /console`` and ``/console/{file}``: the console's static files. They hold no data and no
key: the page calls the keyed read API from the browser with the key its user enters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
HEADERS = {  # the page may load only its own files and call only its own API
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    name = (event.get("pathParameters") or {}).get("file") or "index.html"
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in TYPES or not path.is_file():
        return {"statusCode": 404, "headers": {"Content-Type": "text/plain"}, "body": f"no such file: {name}"}
    return {"statusCode": 200, "headers": {"Content-Type": TYPES[path.suffix], **HEADERS}, "body": path.read_text()}
