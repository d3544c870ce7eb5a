"""Second-stage models: classifiers run on the crops of detections, one module per family."""

from pipeline.models.classifiers.base import ClassifierAdapter, ClassifierError, crop_box
from pipeline.models.classifiers.classifier import Classifier
from pipeline.models.classifiers.families import (
    CLASSIFIER_ADAPTER_NAMES,
    classifier_family,
    create_classifier_adapter,
)
from pipeline.models.classifiers.multilabel import MultiLabelAdapter
from pipeline.models.classifiers.softmax import SoftmaxAdapter
from pipeline.models.classifiers.spec import (
    ClassifyOptions,
    ClassifySpec,
    check_detector_labels,
    parse_class_names,
    parse_classify_spec,
)

__all__ = [
    "CLASSIFIER_ADAPTER_NAMES",
    "Classifier",
    "ClassifierAdapter",
    "ClassifierError",
    "ClassifyOptions",
    "ClassifySpec",
    "MultiLabelAdapter",
    "SoftmaxAdapter",
    "check_detector_labels",
    "classifier_family",
    "create_classifier_adapter",
    "crop_box",
    "parse_class_names",
    "parse_classify_spec",
]
