"""ASGI entry point for uvicorn/gunicorn workers: ``cds_service.asgi:app``."""

from cds_service.app import create_app
from cds_service.heap import settle_after_startup

app = create_app()
settle_after_startup()  # the runtime is built: what is alive now lives as long as the worker
