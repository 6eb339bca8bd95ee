"""The card catalogue: cards/*.yaml (reviewed clinical text) rendered from findings.

The catalogue decides wording, sources, suggestions and override reasons, and says the
evidence and missing-data labels the rules emit as codes; it never decides clinical logic
(tiers and outcomes come from the rules).
"""

from cds_service.catalogue.cards import FAMILIES, Catalogue
from cds_service.catalogue.schema import CatalogueError
from cds_service.catalogue.text import NumberView, blank_line_before_tables, count_of, days_in_words

__all__ = [
    "FAMILIES",
    "Catalogue",
    "CatalogueError",
    "NumberView",
    "blank_line_before_tables",
    "count_of",
    "days_in_words",
]
