"""The engine worker pool (:mod:`faceplus.workers`): jobs, errors, cancellation, limits."""
