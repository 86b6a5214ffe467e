"""Performance predictors fitted on labelled cells: zero-cost scores, failure flags and graph structure in,
predicted quality and probability of divergence out (``zeronas predict fit|curve``)."""

from zeronas.predict.features import feature_matrix, feature_names, structure_features
from zeronas.predict.model import OBJECTIVES, Prediction, Predictor, PredictorError, TreeParams, load_predictor

__all__ = ["OBJECTIVES", "Prediction", "Predictor", "PredictorError", "TreeParams", "feature_matrix",
           "feature_names", "load_predictor", "structure_features"]
