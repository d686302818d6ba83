"""The run store: the only package that reads or writes the runs directory.

  runs.py      runs dir, resolving, listing and loading runs, the sweeps' files
  files.py     a run folder's file names and bounds, safe reads and writes, atomic JSON, the one-writer
               lock, damage checks, checkpoints
  scores.py    scores.npz, checked against the run's config
  notes.py     notes.json: display name, notes, tags
  log.py       log.txt and the event lines written to it (the lines `damtui train` prints)
  trash.py     deleting a run: to runs/.trash/, refused while written or while fine-tunes use it
  results.py   a run's result with intervals, the scores behind it, paired runs
  progress.py  where a run is in its epoch (progress.json for followers), ETA
"""
