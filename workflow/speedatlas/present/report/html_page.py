"""report.md as one self-contained HTML page (images embedded), for a docs site or a release.

Rendered by markdown-it-py (CommonMark plus pipe tables), not by a converter of our own: lists
whose items wrap, code spans across a line break and escapes follow the specification.

A report can quote text from another machine's bundle (error messages, CPU names), so the page
treats everything as data unless it is safe: raw HTML is escaped (`html: False`), a link is kept
only with a safe scheme (http, https, mailto) or as a relative path or anchor, and an image is
embedded only from inside the report's own folder (`base`); any other image is shown as its alt
text, never fetched and never read from elsewhere on this machine.

The same page is the report item of Snakemake's HTML report (`snakemake --report`), which shows an
HTML item in a frame of its own, loaded from a data: URL: there a link to a file beside the
report leads nowhere, so `files=False` shows such links as their text (anchors and web links stay).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt

STYLE = """
body { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif;
       max-width: 1100px; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1f2328; }
h1, h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d1d9e0; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fafbfc; }
code { background: #f3f4f6; padding: 0.1em 0.3em; border-radius: 4px; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 1rem; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
img { max-width: 100%; height: auto; }
"""

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
SAFE_SCHEMES = ("http", "https", "mailto")


def safe_link(url: str) -> bool:
    """A link a reader may follow: a safe scheme, or a relative path or anchor (no scheme)."""
    parts = urlsplit(url.strip())
    if parts.scheme:
        return parts.scheme.lower() in SAFE_SCHEMES
    return not url.strip().startswith("//")  # protocol-relative: another host, unchecked


def local_image(src: str, base: Path | None) -> Path | None:
    """The image file `src` names inside `base`, or None (absolute, outside, remote, not an image)."""
    if base is None or not src or urlsplit(src).scheme or src.startswith(("/", "\\")):
        return None
    root = base.resolve()
    try:
        file = (root / unquote(src)).resolve()
    except (OSError, ValueError):
        return None
    if not file.is_relative_to(root) or not file.is_file() or file.suffix.lower() not in _MIME:
        return None
    return file


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def file_link(url: str) -> bool:
    """A link to a file beside the page (plots/noise.svg), not an anchor nor a web address."""
    parts = urlsplit(url.strip())
    return not parts.scheme and not url.strip().startswith("#")


def _unlink_files(state) -> None:
    """Core rule: a link to a file keeps its label and loses its link (the page travels alone)."""
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        kept, depth = [], 0
        for child in token.children:
            if child.type == "link_open" and (depth or file_link(child.attrGet("href") or "")):
                depth += 1
                continue
            if child.type == "link_close" and depth:
                depth -= 1
                continue
            kept.append(child)
        token.children = kept


def _renderer(base: Path | None, files: bool = True) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.validateLink = safe_link  # an unsafe link stays text: "[label](javascript:...)"
    if not files:
        md.core.ruler.push("unlink_files", _unlink_files)

    def image(renderer, tokens, index, options, env):
        token = tokens[index]
        alt = renderer.renderInlineAsText(token.children or [], options, env)
        file = local_image(token.attrGet("src") or "", base)
        if file is None:
            return html.escape(alt)
        data = base64.b64encode(file.read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(alt, quote=True)}" src="data:{_MIME[file.suffix.lower()]};base64,{data}">'

    def heading_open(renderer, tokens, index, options, env):
        inline = tokens[index + 1]
        tokens[index].attrSet("id", _slug(inline.content))
        return renderer.renderToken(tokens, index, options, env)

    md.add_render_rule("image", image)
    md.add_render_rule("heading_open", heading_open)
    return md


def to_html(markdown: str, base: Path | None = None, title: str | None = None, files: bool = True) -> str:
    """A whole HTML document from report Markdown; images inside `base` are embedded. `files`:
    keep links to files beside the page (False: show them as text, for a page that travels alone)."""
    body = _renderer(base, files).render(markdown)
    if title is None:
        title = next((line[2:].strip() for line in markdown.splitlines() if line.startswith("# ")), "speedatlas report")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + body
        + "</body>\n</html>\n"
    )
