"""damtui: Deep AUC Maximization on MedMNIST, in the terminal."""

__version__ = "0.1.0"
