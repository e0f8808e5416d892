"""Search as a service: ``python -m search.serve`` exposes the engine as an OpenAI-compatible
endpoint (``search.serve.app``) that batches concurrent requests into strategy calls
(``search.serve.service``). FastAPI and uvicorn are imported only here."""
