"""Image data for searches: offline data sets and the paper's preprocessing."""

from keras_sage.datasets.offline import ImageSplits, digits, image_folder
from keras_sage.datasets.preprocessing import cifar_preprocessing, standardize

__all__ = ["ImageSplits", "cifar_preprocessing", "digits", "image_folder", "standardize"]
