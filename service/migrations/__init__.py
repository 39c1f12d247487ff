"""Schema migrations (Alembic): every change to the tables is a revision here, applied at startup.

``service.core.db.make_engine`` upgrades a database to the newest revision before anything uses it; a
database created by a techmatch from before the migrations (tables, no ``alembic_version``) is first
recognised as the initial revision. Operators can also run ``techmatch db upgrade`` / ``techmatch db current``.
"""
