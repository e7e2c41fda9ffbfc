"""Face++'s rules (lookups, checks, detect-and-store, FaceSets, FaceAlbums, erasure, tasks), free of HTTP."""
