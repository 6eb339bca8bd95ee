"""The catalogue's texts as Jinja templates: sandboxed, strict about unknown names, each
compiled once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from cds_service.catalogue.schema import CatalogueError
from cds_service.catalogue.text import count_of, md, sourced


class Templates:
    def __init__(self) -> None:
        self._env = SandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
        )
        self._env.filters["md"] = md
        self._env.filters["count_of"] = count_of
        self._env.filters["sourced"] = sourced
        self._env.filters["frequency"] = self._frequency
        self._frequencies: Mapping[str, str] = {}
        # Compiling a template costs more than rendering it: compile each text once.
        self._compiled: dict[str, Any] = {}

    def use_frequencies(self, words: Mapping[str, str]) -> None:
        """How many times a day reads ("3" -> "TID"); "other" says any other number."""
        self._frequencies = words

    def _frequency(self, per_day: object) -> str:
        text = str(per_day)
        if text in self._frequencies:
            return self._frequencies[text]
        return self.render(self._frequencies.get("other", "{{ n }}/day"), {"n": text},
                           "frequency_words.other")

    def compile(self, text: str, where: str) -> Any:
        template = self._compiled.get(text)
        if template is None:
            try:
                template = self._compiled[text] = self._env.from_string(text)
            except TemplateError as exc:
                raise CatalogueError(f"{where}: template error: {exc}") from exc
        return template

    def names(self, text: str, where: str) -> set[str]:
        """The names a template reads (what a trial rendering must give it)."""
        try:
            return set(meta.find_undeclared_variables(self._env.parse(text)))
        except TemplateError as exc:
            raise CatalogueError(f"{where}: template error: {exc}") from exc

    def render(self, text: str, context: Mapping[str, Any], where: str, *,
               strip: bool = True) -> str:
        """The text rendered; ``strip=False`` keeps it as is (a label holding chart text)."""
        template = self.compile(text, where)
        try:
            rendered = str(template.render(context))
        except TemplateError as exc:
            raise CatalogueError(f"{where}: {exc}") from exc
        return rendered.strip() if strip else rendered
