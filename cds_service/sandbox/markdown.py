"""Card ``detail`` markdown to HTML that is safe to insert into the sandbox page.

Raw HTML in the markdown is escaped (``html`` off), link targets with script-capable schemes
are refused by markdown-it's link validation, and images are not rendered at all: a card must
not make the clinician's browser fetch anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # A card link opens outside the EHR frame, and tells the target nothing about the chart.
    tokens[idx].attrSet("target", "_blank")
    tokens[idx].attrSet("rel", "noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


def _parser() -> MarkdownIt:
    # Tables (GFM) are how cards lay out their evidence.
    md = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
    md.add_render_rule("link_open", _link_open)
    return md


_MARKDOWN = _parser()


def render_markdown(text: str) -> str:
    html: Any = _MARKDOWN.render(text)
    return str(html)
