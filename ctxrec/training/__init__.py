"""Training: the Recommender interface, models, losses, the loop, metrics."""
from ctxrec.training.metrics import ranking_metrics
from ctxrec.training.recommender import Context, Recommender, request_context
from ctxrec.training.trainer import History, TrainConfig, Trainer

__all__ = ["ranking_metrics", "Context", "Recommender", "request_context", "History", "TrainConfig", "Trainer"]
