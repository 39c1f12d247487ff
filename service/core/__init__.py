"""Service internals: settings, database models, API keys and the index kept in step with the database."""
