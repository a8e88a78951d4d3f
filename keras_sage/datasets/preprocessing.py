"""The paper's CIFAR preprocessing (supplement, "Datasets and Preprocessing"), after He et al.

Training images are zero-padded to 40×40, cropped back to 32×32 at a random position, flipped left to
right with probability 1/2, and standardized to zero mean and unit standard deviation over all the values
of each image. Evaluation images are only standardized.
"""

from __future__ import annotations

import tensorflow as tf

# Zero-padding on each side before the random crop: 32×32 images become 40×40.
CIFAR_PADDING = 4


def standardize(images: tf.Tensor) -> tf.Tensor:
    """Scales each image to zero mean and unit standard deviation over all its pixels and channels.

    Args:
        images: One image (height, width, channels) or a batch (batch, height, width, channels).

    Returns:
        float32 images of the same shape (`tf.image.per_image_standardization`).
    """
    return tf.image.per_image_standardization(images)


def cifar_preprocessing(image: tf.Tensor, training: bool) -> tf.Tensor:
    """Preprocesses one image as the paper does for CIFAR.

    Training: zero-pad by 4 pixels on each side (32×32 becomes 40×40), crop a random window of the
    original size, flip left to right at random, standardize. Evaluation: standardize only. Images of
    other sizes are padded by the same 4 pixels and cropped back to their own size.

    Args:
        image: One image (height, width, channels), any numeric dtype and range (for example 0-255).
        training: Whether to apply the random augmentation.

    Returns:
        The float32 image, same shape.

    Example:

    ```python
    train = train.map(lambda image, label: (cifar_preprocessing(image, training=True), label))
    ```
    """
    image = tf.cast(image, tf.float32)
    if training:
        padded = tf.pad(image, [[CIFAR_PADDING, CIFAR_PADDING], [CIFAR_PADDING, CIFAR_PADDING], [0, 0]])
        cropped = tf.image.random_crop(padded, tf.shape(image))
        cropped.set_shape(image.shape)
        image = tf.image.random_flip_left_right(cropped)
    return standardize(image)
