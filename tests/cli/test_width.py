"""The CLI's epoch lines at 80 columns."""


def test_cli_epoch_rows_fit_80_columns():
    """Rows ending in `*best` wrapped at 80 columns."""
    from damtui.store.log import epoch_header, epoch_line
    from damtui.records import EpochRow

    row = EpochRow.from_json({"epoch": 200, "train_loss": 0.3962, "train_auc": 0.869, "val_auc": 0.8955,
                              "val_acc": 0.665, "test_auc": 0.8532, "test_acc": 0.665, "test_acc_thr": 0.845,
                              "lr": 0.001, "epoch_s": 125.1, "images_per_s": 12345.0})
    assert len(epoch_line(row, True)) < 80 and len(epoch_header()) < 80
    assert epoch_line(row, True).endswith(" *best")
