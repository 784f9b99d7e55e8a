"""Classification as staff and workers use it: corrections, their export, the taxonomy in force, and
near-duplicate links. The classifier itself (pure functions) is ``service.classification``."""
