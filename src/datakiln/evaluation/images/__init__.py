"""Image evaluation: Fréchet distance, KID, precision/recall, class fidelity and memorisation
in the features of a classifier datakiln trains on the real images (:func:`evaluate_images`)."""

from datakiln.evaluation.images.suite import ImageEvaluationReport, evaluate_images, is_image_data

__all__ = ["ImageEvaluationReport", "evaluate_images", "is_image_data"]
