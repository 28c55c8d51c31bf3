"""The English masked LM advembed uses (VDA's mixture, BERT-Attack's and BAE's candidates).

No registry package carries English masked-LM weights, so ``advembed mlm build`` makes one:
masked-LM training of the packaged MiniLM, every layer, on real unlabeled text from the
shipped packages (:mod:`advembed.mlm.build`); it is cached under ``$ADVEMBED_CACHE/mlm/``
and is the default wherever an MLM is needed (:func:`load_masked_lm` with ``"default"``).
"""

from advembed.mlm.load import DEFAULT_MLM, built_mlm_dir, check_mlm_split, load_masked_lm

__all__ = ["DEFAULT_MLM", "built_mlm_dir", "check_mlm_split", "load_masked_lm"]
