"""Hand-off (移交、移送): the signed dossier a transferred or sent-on clue leaves the registry as, and the
receiving organ's feedback recorded against it."""
