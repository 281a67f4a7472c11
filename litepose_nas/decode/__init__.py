"""Decoding: network outputs -> people (grouping by associative embedding, test-time transforms).

Importing this package needs numpy and scipy only; torch and OpenCV load inside the functions that
use them, and decoding a network's outputs runs without torch (numpy resizing) where it is not installed.
"""
from .grouping import Candidates, group, nms, original_joint_order, top_candidates
from .postprocess import (
    ResizeInfo, decode_outputs, fuse_outputs, map_ops, network_maps, normalize_array, normalize_image, people_from_maps,
    predict_people, resize_bilinear, resize_for_test, resize_info, to_image_coords,
)
from .oracles import oracle_people

__all__ = [
    "group", "top_candidates", "nms", "original_joint_order",
    "Candidates",
    "ResizeInfo", "resize_info", "resize_for_test", "to_image_coords", "fuse_outputs", "decode_outputs",
    "normalize_image", "normalize_array", "resize_bilinear", "map_ops", "predict_people", "network_maps", "people_from_maps", "oracle_people",
]
