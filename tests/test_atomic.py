"""write_atomically: all or nothing, through symbolic links, keeping a replaced file's mode."""

import os
import stat

import numpy as np
import pytest

from keras_sage._atomic import check_writable_directory, write_atomically
from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_mode_open_gives_it(tmp_path):
    umask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "state.json", lambda file: file.write(b"{}"))
    finally:
        os.umask(umask)
    assert (tmp_path / "state.json").read_bytes() == b"{}"
    assert mode(tmp_path / "state.json") == 0o644  # 0o666 less the umask, not mkstemp's 0o600


@pytest.mark.parametrize("permissions", [0o640, 0o604, 0o755])
def test_a_rewritten_file_keeps_its_mode(tmp_path, permissions):
    path = tmp_path / "teacher.h5"
    path.write_bytes(b"old")
    path.chmod(permissions)
    write_atomically(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"new"
    assert mode(path) == permissions


def test_a_symlinked_file_is_written_through_to_its_target(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    target = shared / "teacher.h5"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "teacher.h5"
    link.symlink_to(target)
    write_atomically(link, lambda file: file.write(b"new"))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new" and mode(target) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared", "teacher.h5"]
    assert [p.name for p in shared.iterdir()] == ["teacher.h5"]  # no temporary file left beside it


def test_an_error_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "teacher.h5"
    path.write_bytes(b"old")

    def fail(file):
        file.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(path, fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["teacher.h5"]


def test_a_teacher_file_behind_a_symlink_stays_a_symlink_with_its_mode(tmp_path):
    target = tmp_path / "teachers" / "monkey.h5"
    target.parent.mkdir()
    images = np.random.default_rng(0).integers(0, 256, size=(6, 4, 4, 1), dtype=np.uint8)
    TeacherStore.create(target, images)
    target.chmod(0o644)
    link = tmp_path / "monkey.h5"
    link.symlink_to(target)
    store = TeacherStore.open(link, writable=True)
    store.add_rdm("IT", rdm(np.random.default_rng(1).standard_normal((6, 5))))
    assert link.is_symlink() and mode(target) == 0o644
    assert TeacherStore.open(target).layer_names == ["IT"]


def test_check_writable_directory(tmp_path):
    check_writable_directory(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"cannot write in the directory .*missing \(No such file"):
        check_writable_directory(tmp_path / "missing")
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories (test_register simulates the refusal)")
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o500)
    try:
        with pytest.raises(PermissionError, match=rf"cannot write in the directory {read_only} \(Permission"):
            check_writable_directory(read_only)
        with pytest.raises(PermissionError, match=rf"cannot write {read_only / 'teacher.h5'} \(Permission"):
            write_atomically(read_only / "teacher.h5", lambda file: file.write(b"x"))
    finally:
        read_only.chmod(0o700)
