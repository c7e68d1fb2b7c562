"""Models: the abuse-detection text classifier (inference needs numpy only, never torch)."""

from connectors.models.text_classifier import (
    KeywordOnlyClassifier,
    TextClassifier,
    TextVerdict,
    load_text_classifier,
)

__all__ = ["KeywordOnlyClassifier", "TextClassifier", "TextVerdict", "load_text_classifier"]
