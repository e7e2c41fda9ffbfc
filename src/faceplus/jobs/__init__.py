"""Engine work as jobs a worker process runs (:mod:`faceplus.workers`) or the server runs inline.

Each job takes the engine and one typed request; it returns typed results and raises
:class:`faceplus.errors.FaceplusError` subclasses, which carry a Face++ error code but no HTTP status.
"""
