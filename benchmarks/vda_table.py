"""Issue 13's comparison (paper 003 Table 2): plain, VDA, FreeLB, FreeLB+VDA, SMART, SMART+VDA;
and Table 5: ADA and VDA+ADA (trained with ``--augment-file``, the PWWS examples of a plain run's
training split; run folders ``DATASET-ada-sSEED``, ``DATASET-vda+ada-sSEED``).

For every finished run ``RUNS_DIR/DATASET-METHOD-sSEED`` (trained by ``benchmarks/quality.py
--methods none vda freelb freelb+vda smart smart+vda``), the word attacks PWWS and BERT-Attack
(with the MLM ``advembed mlm build`` made) on a seeded sample of the test split (1000 examples
as in the paper, the whole split where smaller) are run if their summaries are missing; then
every run's clean test accuracy and accuracy under each attack — the headline, the lowest over
the logit temperatures the attacker tries — go into ``--summary`` (the committed one:
``benchmarks/results/vda/summary.json``, one row per run) and a mean ± std table into ``--out``
(``docs/results-vda.md``).  It is ``attack_table.py`` with these methods and attacks.

    python benchmarks/vda_table.py --runs-dir runs/vda --datasets mr cr --seeds 13 14 15
    python benchmarks/vda_table.py --runs-dir runs/vda --no-attack     # tables only
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import attack_table  # noqa: E402

METHODS = ["none", "vda", "freelb", "freelb+vda", "smart", "smart+vda", "ada", "vda+ada"]
ATTACKS = ["pwws", "bert-attack"]
TITLE = "VDA against plain, FreeLB and SMART (issue 13; paper 003 Table 2)"


def main() -> int:
    args = attack_table.parser(METHODS, ATTACKS, TITLE, __doc__.splitlines()[0]).parse_args()
    args.methods = [m for m in METHODS if m in args.methods]
    return attack_table.main(args, script="vda_table.py")


if __name__ == "__main__":
    sys.exit(main())
