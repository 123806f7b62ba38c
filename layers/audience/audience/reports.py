"""The pieces of the models' HTML reports: a self-contained page, a figure inlined as PNG, a
table. Shared by the segmentation, value and experiment reports, so it lives beside them, not in
any one of them (a model package imports nothing of its siblings)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in Lambda
import matplotlib.pyplot as plt


def page_html(title: str, intro: str, sections: list[tuple[str, str]]) -> str:
    """A self-contained page: ``intro`` (HTML) then each (title, HTML) section."""
    body = "\n".join((f"<h2>{html.escape(t)}</h2>\n" if t else "") + content for t, content in sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1>
{intro}
{body}
</body></html>"""


def figure_html(figure: Any) -> str:
    """``figure`` as an inlined PNG image (the figure is closed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def table_html(header: list[str], rows: list[list[Any]]) -> str:
    """A table of ``rows`` under ``header``, every cell escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
