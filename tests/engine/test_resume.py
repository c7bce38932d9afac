"""Which checkpoint --resume takes: whole files only, newest first, and a word for each one skipped."""
import warnings

import pytest
import torch

from vitadapter.engine.resume import ResumeError, is_complete, last_complete, resume_from


def save(path, legacy=False, cut=False):
    torch.save({'state_dict': {'w': torch.ones(64)}}, path, _use_new_zipfile_serialization=not legacy)
    if cut:
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    return str(path)


def test_whole_files_of_either_torch_format_are_complete_and_a_cut_one_is_not(tmp_path):
    assert is_complete(save(tmp_path / 'zip.pth'))
    assert is_complete(save(tmp_path / 'legacy.pth', legacy=True))
    assert not is_complete(save(tmp_path / 'cut.pth', cut=True))
    assert not is_complete(str(tmp_path / 'missing.pth')) and not is_complete(str(tmp_path))


def test_the_newest_complete_checkpoint_wins_and_the_skipped_one_is_named(tmp_path):
    assert last_complete(str(tmp_path)) is None  # nothing there: a fresh start, silently
    save(tmp_path / 'iter_2.pth')
    save(tmp_path / 'iter_10.pth')  # 10 > 2 by number, not by name
    assert last_complete(str(tmp_path)) == str(tmp_path / 'iter_10.pth')
    cut = save(tmp_path / 'iter_12.pth', cut=True)
    (tmp_path / 'last_checkpoint').write_text(cut)
    with pytest.warns(UserWarning, match=rf'{cut} is incomplete .* resuming from \S*iter_10\.pth'):
        assert resume_from(str(tmp_path), 'auto') == str(tmp_path / 'iter_10.pth')


def test_only_incomplete_checkpoints_start_afresh_with_a_warning(tmp_path):
    cut = save(tmp_path / 'iter_4.pth', cut=True)
    with pytest.warns(UserWarning, match=rf'{cut}: incomplete .* training starts from the beginning'):
        assert last_complete(str(tmp_path)) is None


def test_an_explicit_checkpoint_must_exist_and_be_whole(tmp_path):
    whole = save(tmp_path / 'iter_2.pth')
    assert resume_from(str(tmp_path), whole) == whole
    with pytest.raises(ResumeError, match='no such file'):
        resume_from(str(tmp_path), str(tmp_path / 'iter_9.pth'))
    cut = save(tmp_path / 'iter_4.pth', cut=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(ResumeError, match=rf'the file is incomplete .* resume from {whole}, the last complete'):
            resume_from(str(tmp_path), cut)
