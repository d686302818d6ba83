"""Training: the engine and everything it drives.

  engine.py     train(config, emit, stop_event): prepare, open, the ONE epoch loop
  trainer.py    Trainer interface, SingleTrainer (one model), RunState, EMA, split scoring
  packing.py    PackedTrainer: several seeds as one vmapped model (`--seeds`, `sweep --pack`)
  stages.py     pretrain (CE) and finetune (AUCM + PESG): loss, optimizer, schedule, head
  models.py     ResNet-18 (28) in 2D and 3D with a width option; head transplant
  pipeline.py   device-resident batches (fast) or per-sample DataLoader (reference)
  augment.py, augment3d.py   the report's augmentations: per-sample reference and batched on-device
  recorder.py   RunRecorder: one run's rows, best tracking, checkpoints, status, endings
  resume.py     checks of --from and --resume runs before anything is written
  predict.py    a saved run's best.pt scores and seed ensembles
  health.py     training health per epoch and the one saturation warning rule
  threads.py, devices.py, gpu.py   CPU threads, device resolution, GPU memory/utilisation

The engine reports only through `emit(event)` and imports no Textual.
"""
