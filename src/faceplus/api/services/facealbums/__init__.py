"""FaceAlbum rules, shared by the routes and the async task runner, one job a module.

- :mod:`.albums`: an album and what it holds (create, delete, list, the detail queries);
- :mod:`.edits`: faces moved between groups or taken out by hand (updateface, deleteface);
- :mod:`.images`: an image's faces detected and added, or searched for among the album's people;
- :mod:`.grouping`: a grouping run over the album and the groups that may be one person;
- :mod:`.placement`: how a grouping places faces (pure rules, no store or engine);
- :mod:`.tasks`: the async tasks (queued with their image, carried out, their state).
"""
