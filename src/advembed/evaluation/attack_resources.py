"""TextAttack, imported offline: its first import would call ``nltk.download`` (network).

The NLTK data it needs (WordNet, the stop words) comes from :mod:`advembed.nltk_data`.
"""

from __future__ import annotations

import os
from pathlib import Path

from advembed.errors import AdvembedError
from advembed.nltk_data import ensure_nltk_data
from advembed.provider import cache_dir


def import_textattack():
    """Import TextAttack offline and return the module.

    TextAttack's first import runs ``nltk.download`` for several packages unless a
    ``post_install_check_3`` marker exists in its cache, and ``WordSwapWordNet`` calls
    ``nltk.download("omw-1.4")`` every time.  We give it a cache folder under ours (unless the
    user set ``TA_CACHE_DIR``) holding the marker, and replace ``nltk.download`` by a no-op; the
    data itself comes from :func:`ensure_nltk_data`.  Importing TextAttack with ``TA_CACHE_DIR``
    set also rewrites ``HF_HOME`` and ``XDG_CACHE_HOME``; those are restored afterwards so our
    own cache does not move.
    """
    import nltk

    ensure_nltk_data()
    saved = {k: os.environ.get(k) for k in _TEXTATTACK_ENV}
    ta_cache = Path(os.environ.setdefault("TA_CACHE_DIR", str(cache_dir() / "textattack")))
    ta_cache.mkdir(parents=True, exist_ok=True)
    (ta_cache / "post_install_check_3").touch()
    nltk.download = _no_download
    try:
        import textattack
    except ImportError as exc:
        raise AdvembedError(f"word-substitution attacks need TextAttack ({exc}); install them "
                            "with `pip install 'advembed[attack]'`") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return textattack


_TEXTATTACK_ENV = ("TA_CACHE_DIR", "TFHUB_CACHE_DIR", "PYTORCH_TRANSFORMERS_CACHE", "HF_HOME",
                   "XDG_CACHE_HOME")


def _no_download(*args: object, **kwargs: object) -> bool:
    """Stand-in for ``nltk.download``: never touches the network."""
    return True
