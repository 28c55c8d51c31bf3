"""Virtual data augmentation (paper 003): the mixture (:mod:`advembed.vda.mixture`) and the
regularised term with its frozen masked LM (:mod:`advembed.vda.augmenter`)."""

from advembed.vda.augmenter import (
    VDASettings,
    VirtualAugmenter,
    check_for_run,
    refused_augment,
)
from advembed.vda.mixture import Substitutes, replaceable, substitutes

__all__ = ["Substitutes", "VDASettings", "VirtualAugmenter", "check_for_run", "refused_augment",
           "replaceable", "substitutes"]
