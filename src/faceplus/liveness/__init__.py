"""Action liveness (FaceID-style): random challenges, per-frame signals, and the verdict. docs/LIVENESS.md."""
