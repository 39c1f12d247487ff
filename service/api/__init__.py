"""HTTP layer: request/response schemas, injected dependencies and the routes, one module per resource."""
