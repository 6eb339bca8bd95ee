"""ASGI entry point for uvicorn/gunicorn workers: ``cds_service.asgi:app``."""

import gc

# Startup builds ~150,000 objects that live as long as the worker; collecting while they pile
# up is wasted work (~15% of a cold start, measured). cds_service/heap.py says what follows.
gc.disable()
try:
    from cds_service.app import create_app
    from cds_service.heap import settle_after_startup

    app = create_app()
finally:
    settle_after_startup()
