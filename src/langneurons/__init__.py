"""langneurons: find the FFN neurons specific to a language (LAPE) and fine-tune only them."""

__version__ = "0.1.0"
