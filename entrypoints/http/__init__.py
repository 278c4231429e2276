"""The HTTP API: ``writ serve`` (Starlette under uvicorn), JWT-authenticated, one route per command."""
