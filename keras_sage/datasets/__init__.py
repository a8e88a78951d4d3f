"""Image data for searches: tensorflow-datasets pipelines, offline data sets, probe sets, preprocessing."""

from keras_sage.datasets.cifar import cifar10, cifar100
from keras_sage.datasets.imagenet64 import imagenet64
from keras_sage.datasets.offline import ImageSplits, digits, image_folder
from keras_sage.datasets.preprocessing import cifar_preprocessing, standardize, vgg_preprocessing
from keras_sage.datasets.probes import probe_set
from keras_sage.datasets.tfds_splits import DatasetNotAvailableError, TFDSSplits

__all__ = [
    "DatasetNotAvailableError",
    "ImageSplits",
    "TFDSSplits",
    "cifar10",
    "cifar100",
    "cifar_preprocessing",
    "digits",
    "image_folder",
    "imagenet64",
    "probe_set",
    "standardize",
    "vgg_preprocessing",
]
