"""What an operator runs the service with: security headers, trusted proxies, metrics, request ids and JSON
logs, backups. The ASGI layers here wrap the whole app (``service.main.App``), errors included."""
