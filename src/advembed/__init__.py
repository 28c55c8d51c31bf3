"""advembed: robust fine-tuning of NLP models by adversarial training in the embedding space."""

from advembed.errors import AdvembedError

__version__ = "0.1.0"

__all__ = ["AdvembedError", "__version__"]
