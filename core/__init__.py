"""Infrastructure: the factory (the one composition root), settings, extensions, the queue.

Nothing here imports the domain except `core.app.create_app`.
"""
