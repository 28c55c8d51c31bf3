"""The flags several settings classes share, each declared once (name, help, range).

The perturbation flags are the same on ``train`` (the training methods), ``attack`` (the PGD
and vulnerability attacks) and ``reconstruct``; each class gives its own default with
:func:`advembed.settings.setting`.  The data flags are in :mod:`advembed.data.options`.
"""

from __future__ import annotations

from advembed.data.base import SPLITS
from advembed.perturbation import NORMS
from advembed.settings import Flag

# --- the perturbation option group ----------------------------------------------------------
EPSILON = Flag("--adv-epsilon", "radius ε of the perturbation ball (0 = unbounded; where ε is "
               "the step itself, as for FGSM, FGM and FreeAT, it must be > 0)", minimum=0)
ALPHA = Flag("--adv-alpha", "ascent step size α", minimum=0)
STEPS = Flag("--adv-steps", "ascent steps", minimum=1)
NORM = Flag("--adv-norm", "norm of the ball and of the ascent step", choices=NORMS)
INIT = Flag("--adv-init", "magnitude γ of the random start (0 = start at zero)", minimum=0)
RANDOM_START = Flag("--adv-random-start", "magnitude of a random start (0 = start at zero)",
                    minimum=0)
CLEAN_WEIGHT = Flag("--adv-clean-weight", "weight of the clean loss beside the adversarial one",
                    minimum=0)
WARMUP_STEPS = Flag("--adv-warmup-steps", "plain steps before the adversarial ones", minimum=0)
ALPHA_RATIO = Flag("--adv-alpha-ratio", "step size as a fraction of ε, when --adv-alpha is not "
                   "given", minimum=0, exclusive_minimum=True)

# --- the sample an evaluation command reads ---------------------------------------------------
SPLIT = Flag("--split", "split to read", choices=SPLITS)
N_EXAMPLES = Flag("--n-examples", "size of the seeded sample (the whole split if smaller)",
                  minimum=1)
PROGRESS = Flag("--progress", "progress bars (--no-progress: none)")
