"""Pure functions from landmarks and pixels to Face++ attributes (pose, blur, eyes, mouth, quality, ...).

Composed for one face by :class:`faceplus.attributes.FaceAnalyzer`.
"""
