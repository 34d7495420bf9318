"""The admin API's routers under /api/v1, one module per resource."""
