"""Training: the paper's three weight strategies on four backbones, with grouped k-fold
cross-validation (`python train.py`, `neometer train`)."""
