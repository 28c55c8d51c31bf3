"""VAA (paper 002): a second model trained with a frozen first model's vulnerability of each
example.  :mod:`.features` computes the vulnerability vector, :mod:`.model` the two-stage
model; ``advembed train --method vaa --base-run RUN`` trains it."""
