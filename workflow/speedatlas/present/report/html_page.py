"""report.md as one self-contained HTML page (images embedded), for a docs site or a release.

The report is Markdown we write ourselves, so a converter for the subset we emit (headings,
paragraphs, bullet lists, pipe tables, fenced code, images, links, `code`, **bold**, *italic*)
is enough and adds no dependency. Anything else passes through as escaped text, never as HTML.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

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

_IMAGE_LINE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
_INLINE = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)|\*\*(.+?)\*\*|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _image_src(path: str, base: Path | None) -> str:
    """A data: URI for a local image (self-contained page), else the path as written."""
    if base is not None and "://" not in path:
        file = base / path
        if file.is_file() and file.suffix.lower() in _MIME:
            data = base64.b64encode(file.read_bytes()).decode("ascii")
            return f"data:{_MIME[file.suffix.lower()]};base64,{data}"
    return html.escape(path, quote=True)


def inline(text: str, base: Path | None = None) -> str:
    """Inline Markdown -> HTML; `code` spans are taken verbatim."""
    out = []
    for index, part in enumerate(re.split(r"`([^`]*)`", text)):
        if index % 2:
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        part = part.replace("\\|", "|")
        pos, pieces = 0, []
        for match in _INLINE.finditer(part):
            pieces.append(html.escape(part[pos : match.start()]))
            bang, label, target, bold, italic = match.groups()
            if target is not None and bang:
                pieces.append(f'<img alt="{html.escape(label, quote=True)}" src="{_image_src(target, base)}">')
            elif target is not None:
                pieces.append(f'<a href="{html.escape(target, quote=True)}">{inline(label, base)}</a>')
            elif bold is not None:
                pieces.append(f"<strong>{inline(bold, base)}</strong>")
            else:
                pieces.append(f"<em>{inline(italic, base)}</em>")
            pos = match.end()
        pieces.append(html.escape(part[pos:]))
        out.append("".join(pieces))
    return "".join(out)


def _cells(line: str) -> list[str]:
    body = line.strip().strip("|")
    return [c.strip() for c in re.split(r"(?<!\\)\|", body)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def to_html(markdown: str, base: Path | None = None, title: str | None = None) -> str:
    """A whole HTML document from report Markdown; images under `base` are embedded."""
    lines = markdown.splitlines()
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append(f"<p>{inline(' '.join(paragraph), base)}</p>")
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            language = stripped[3:].strip()
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            cls = f' class="language-{html.escape(language, quote=True)}"' if language else ""
            out.append(f"<pre><code{cls}>{html.escape(chr(10).join(block))}</code></pre>")
        elif heading := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            flush()
            level, text = len(heading.group(1)), heading.group(2)
            out.append(f'<h{level} id="{_slug(text)}">{inline(text, base)}</h{level}>')
        elif stripped.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            i -= 1
            header, body = _cells(rows[0]), [r for r in rows[1:] if not re.match(r"^\|[\s:|-]+\|?$", r.strip())]
            table = ["<table>", "<thead><tr>" + "".join(f"<th>{inline(c, base)}</th>" for c in header) + "</tr></thead>",
                     "<tbody>"]
            table += ["<tr>" + "".join(f"<td>{inline(c, base)}</td>" for c in _cells(r)) + "</tr>" for r in body]
            out.append("\n".join(table + ["</tbody></table>"]))
        elif stripped.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(f"<li>{inline(lines[i].strip()[2:], base)}</li>")
                i += 1
            i -= 1
            out.append("<ul>\n" + "\n".join(items) + "\n</ul>")
        elif image := _IMAGE_LINE.match(stripped):
            flush()
            alt, path = image.groups()
            out.append(f'<figure><img alt="{html.escape(alt, quote=True)}" src="{_image_src(path, base)}"></figure>')
        elif not stripped:
            flush()
        else:
            paragraph.append(stripped)
        i += 1
    flush()
    if title is None:
        first = next((line[2:].strip() for line in lines if line.startswith("# ")), "speedatlas report")
        title = first
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(out)
        + "\n</body>\n</html>\n"
    )
