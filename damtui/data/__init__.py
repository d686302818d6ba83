"""The data: MedMNIST files (loading, validation, MD5, fetch on request) and the synthetic sets
(datasets.py), and the MedMNIST v2 paper's benchmark table shipped as data (medmnist_v2.toml).
Importing the package pulls in neither torch nor medmnist."""
