"""Multimodal models: per-modality encoders, fusion, unimodal heads, and their training."""

from bmmal.models.classifier import ModelOutput, MultimodalClassifier
from bmmal.models.encoders import build_encoder, encoder_kinds, register_encoder
from bmmal.models.training import TrainingLoop, build_model, multimodal_loss, resolve_device

__all__ = ["ModelOutput", "MultimodalClassifier", "TrainingLoop", "build_encoder", "build_model", "encoder_kinds",
           "multimodal_loss", "register_encoder", "resolve_device"]
