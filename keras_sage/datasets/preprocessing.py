"""The paper's preprocessing (supplement, "Datasets and Preprocessing"): CIFAR and ImageNet.

CIFAR, after He et al.: training images are zero-padded to 40×40, cropped back to 32×32 at a random
position, flipped left to right with probability 1/2, and standardized to zero mean and unit standard
deviation over all the values of each image. Evaluation images are only standardized.

ImageNet, VGG-style (`vgg_preprocessing`): random rescaling, random crop and flip for training, a central
crop for evaluation, at the paper's 224 pixels scaled down to the crop size (64 in the paper's §4.4).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

# `(image, training) -> image`: what a pipeline applies to each image.
Preprocessing = Callable[[tf.Tensor, bool], tf.Tensor]

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


# The paper's ImageNet recipe (VGG preprocessing, Simonyan & Zisserman) at its original scale: the shorter
# side resized to a random size in [256, 512] for training and to 256 for evaluation, then a 224×224 crop.
VGG_CROP_SIZE = 224
VGG_TRAIN_SHORTER_SIDE = (256, 512)
VGG_EVAL_SHORTER_SIDE = 256


def vgg_shorter_sides(image_size: int) -> tuple[int, int, int]:
    """The paper's VGG resize targets scaled from a 224 crop to an `image_size` crop.

    Args:
        image_size: Side of the square crop (64 for the paper's ImageNet search).

    Returns:
        (smallest and largest training shorter side, evaluation shorter side), each the 224-pixel value
        times `image_size / 224`, rounded: (73, 146, 73) for 64.
    """
    scale = image_size / VGG_CROP_SIZE
    low, high = VGG_TRAIN_SHORTER_SIDE
    return round(low * scale), round(high * scale), round(VGG_EVAL_SHORTER_SIDE * scale)


def vgg_preprocessing(image: tf.Tensor, training: bool, image_size: int = 64) -> tf.Tensor:
    """Preprocesses one image with the paper's VGG-style ImageNet recipe, scaled to `image_size`.

    The paper resizes the shorter side to a random size in [256, 512] (aspect ratio kept), cuts a random
    224×224 crop and flips it left to right at random; for evaluation it takes the central 224×224 crop
    (of the image resized to a shorter side of 256, as VGG's single-scale evaluation does). Here every size
    is multiplied by `image_size / 224` (see `vgg_shorter_sides`): at 64×64, a shorter side drawn uniformly
    from the integers 73 to 146 and a random 64×64 crop for training, a shorter side of 73 and the central
    64×64 crop for evaluation. Resizing is bilinear with antialiasing. The crop is then standardized per
    image (zero mean, unit standard deviation), as CIFAR images are (`standardize`), so that probe images
    and training images of every data set go through the same normalization.

    Args:
        image: One image (height, width, channels), any numeric dtype and range (for example 0-255).
        training: Whether to draw the random scale, crop and flip; otherwise resize and crop centrally.
        image_size: Side of the square output.

    Returns:
        The float32 image (image_size, image_size, channels).

    Example:

    ```python
    train = train.map(lambda image, label: (vgg_preprocessing(image, training=True), label))
    ```
    """
    smallest_side, largest_side, eval_side = vgg_shorter_sides(image_size)
    if training:
        shorter_side = tf.random.uniform([], smallest_side, largest_side + 1, dtype=tf.int32)
    else:
        shorter_side = tf.constant(eval_side, tf.int32)
    image = _resize_shorter_side(tf.cast(image, tf.float32), shorter_side)
    channels = image.shape[-1]
    if training:
        image = tf.image.random_crop(image, [image_size, image_size, tf.shape(image)[-1]])
        image = tf.image.random_flip_left_right(image)
    else:
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        image = tf.image.crop_to_bounding_box(
            image, (height - image_size) // 2, (width - image_size) // 2, image_size, image_size
        )
    image.set_shape([image_size, image_size, channels])
    return standardize(image)


def _resize_shorter_side(image: tf.Tensor, shorter_side: tf.Tensor) -> tf.Tensor:
    """Bilinear, antialiased resize of one image so that its shorter side is `shorter_side` pixels."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(shorter_side, tf.float32) / tf.reduce_min(size)
    new_size = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), shorter_side)
    return tf.image.resize(image, new_size, method="bilinear", antialias=True)


def preprocess_and_batch(
    dataset: tf.data.Dataset,
    preprocessing: Preprocessing | None,
    training: bool,
    batch_size: int,
    cache: bool = False,
) -> tf.data.Dataset:
    """Maps `preprocessing(image, training)` over `(image, label)` pairs in parallel; batches, prefetches.

    Args:
        dataset: Unbatched `(image, label)` pairs.
        preprocessing: The per-image preprocessing, or None for none.
        training: Passed to `preprocessing`.
        batch_size: Pairs per batch.
        cache: Whether to keep the preprocessed pairs in memory after the first pass (for deterministic
            preprocessing only).

    Returns:
        The batched, prefetched dataset.
    """
    if preprocessing is not None:
        dataset = dataset.map(
            lambda image, label: (preprocessing(image, training), label), num_parallel_calls=tf.data.AUTOTUNE
        )
    if cache:
        dataset = dataset.cache()
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
