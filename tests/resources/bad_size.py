"""A source whose size hint is not a size."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text", size="40 gigs")
