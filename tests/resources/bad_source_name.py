"""A source name with a space."""

import sparkflow as sf

books = sf.source("my books", "data/books/", format="text")
