"""The API's routers, one module per area, all under ``/v1``."""
