"""The rule book as one HTML page (markdown-it, the renderer the sandbox uses), for readers
without a Markdown viewer. It carries the SHA-256 of the Markdown it was made from, so a test
can tell a stale page without comparing renderer output byte for byte."""

from __future__ import annotations

from html import escape

from markdown_it import MarkdownIt

# The book's own text: raw HTML allowed for its anchors (nothing in it comes from a chart).
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable("table")

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; color: #1b1f24; max-width: 60rem;
  margin: 0 auto; padding: 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #c9d1d9; padding: .25rem .5rem; text-align: left;
  vertical-align: top; }
th { background: #f4f6f8; }
pre { background: #f4f6f8; padding: .5rem; overflow-x: auto; font-size: .82rem; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
h3 { border-top: 2px solid #c9d1d9; padding-top: .75rem; margin-top: 2rem; }
"""


def html_page(markdown: str, digest: str) -> str:
    title = markdown.split("\n", 1)[0].lstrip("# ").strip()
    body = _MARKDOWN.render(markdown)
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<meta name=\"itb-cds-rulebook-digest\" content=\"{digest}\">\n"
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )
