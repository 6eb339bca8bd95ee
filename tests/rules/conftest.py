from __future__ import annotations

import pytest

from cds_service.config import Settings
from cds_service.terminology import Terminology


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def terms(settings: Settings) -> Terminology:
    return Terminology.load(settings)
