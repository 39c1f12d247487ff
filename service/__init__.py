"""The techmatch HTTP service: FastAPI app (``service.main.create_app``), database, live index and routes."""
