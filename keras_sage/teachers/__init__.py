"""Teacher files: probe images and teacher RDMs in HDF5, registered from Keras models or recordings."""

from keras_sage.teachers.register import register_recordings, register_teacher
from keras_sage.teachers.store import TeacherFileError, TeacherStore, probe_fingerprint

__all__ = ["TeacherFileError", "TeacherStore", "probe_fingerprint", "register_recordings", "register_teacher"]
