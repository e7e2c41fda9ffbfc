"""People's tools on top of the engine and the store: bulk indexing of photo folders and face clustering.

Their commands live in :mod:`faceplus.cli.tools`.
"""
