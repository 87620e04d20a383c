"""Optional TensorBoard event files from a finished run (tensorboard is a dev dependency)."""

from __future__ import annotations

import builtins

import pytest
from support.runfactory import write_run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from hpstudy.cli import main as cli_main
from hpstudy.core.errors import HpstudyError
from hpstudy.report import tensorboard_log


def test_event_files_hold_every_epoch_and_the_hparams(tmp_path):
    acc = [0.3, 0.5, 0.7, 0.6]
    run = tmp_path / "runs" / write_run(tmp_path / "runs", epochs=4, test_acc=acc, batch_size=64)
    out = tmp_path / "tb" / "intel-150" / "bs-64" / "seed-0"
    assert cli_main(["tensorboard", "--run-dir", str(run), "--out-dir", str(out)]) == 0
    events = EventAccumulator(str(out))
    events.Reload()
    scalars = events.Scalars("accuracy/test")
    assert [s.step for s in scalars] == [1, 2, 3, 4]
    assert [s.value for s in scalars] == pytest.approx(acc)
    assert "loss/train" in events.Tags()["scalars"]
    assert events.Scalars("hparam/final_test_acc")[0].value == pytest.approx(0.6)
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["batch_size"].number_value == 64
    assert hparams["kernel_width"].string_value == "5-5-7"
    # a rerun replaces the folder instead of adding a second set of events
    before = sorted(p.name for p in out.iterdir())
    tensorboard_log.write_tensorboard(run, out)
    assert len(sorted(p.name for p in out.iterdir())) == len(before)
    assert sorted(p.name for p in out.parent.iterdir()) == ["seed-0"]  # no staging folder left


def test_missing_tensorboard_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(HpstudyError, match=r"pip install hpstudy\[tensorboard\]"):
        tensorboard_log.summary_writer_class()
