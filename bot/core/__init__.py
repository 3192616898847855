"""The domain, its ports and its errors: no I/O, imports only `routing`."""
