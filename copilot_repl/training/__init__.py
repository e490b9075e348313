"""The training side: a run from its config to a saved checkpoint, on torch. It may use the completing
side's pure pieces (retrieval, scoring); nothing there imports from here."""
