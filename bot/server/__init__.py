"""The composition root: config, services, the FastAPI app, HTTP routes, CLI, channel mounts."""
