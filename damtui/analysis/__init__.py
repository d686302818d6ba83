"""Pure functions over records and scores, shared by both front ends.

  metrics.py      AUC, ACC, validation thresholds (pure numpy)
  uncertainty.py  95% intervals of test AUC/ACC (stratified bootstrap), DeLong, paired difference
  groups.py       SeedGroup: runs that differ only by seed, mean ± std of the answer's metrics
  compare.py      differing config keys, metrics side by side, CSV/Markdown
  leaderboard.py  per dataset the best seed group by mean val AUC vs the MedMNIST v2 rows
  references.py   the MedMNIST v2 benchmark rows (damtui/data/medmnist_v2.toml)
  curves.py       ROC, precision-recall, confusion matrices, per-label AUCs
  calibration.py  reliability diagram and ECE of test scores, both stages of a fine-tune side by side
  dam_gain.py     does DAM help: a fine-tune vs its own pretrain, paired bootstrap per seed and pooled
  mistakes.py     a run's test mistakes at the validation threshold of its answer
  gallery.py      dataset browser data: samples, counts, pixel stats, slices, montages
  pictures.py     pictures as terminal cells (Kitty/Sixel, half-blocks, NO_COLOR ramp)
"""
