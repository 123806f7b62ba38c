"""Product recommendations: interactions into an item-to-item model (``training``), judged
offline against popularity (``evaluation``), served from a plain JSON artifact (``spec``)."""
