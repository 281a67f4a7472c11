"""Keypoint metrics: the COCO and CrowdPose protocols on pycocotools, COCO-format results."""
from .cocoapi import coco_from_dict, load_results, oks_matrix, run_cocoeval, summarize
from .protocols import (
    COCO_METRICS, CROWD_BOUNDARIES, CROWDPOSE_AREA_FACTOR, CROWDPOSE_METRICS, PROTOCOLS, coco_metrics,
    crowd_subsets, crowdpose_gt, crowdpose_metrics, keypoint_metrics, protocol_eval,
)
from .breakdown import ErrorBreakdown, error_breakdown, plot_breakdown
from .results import gt_as_results, people_to_results, read_results, write_results
from .score import ScoreResult, check_detections, load_ground_truth, score, score_results

__all__ = [
    "coco_metrics", "crowdpose_metrics", "keypoint_metrics", "protocol_eval", "crowd_subsets", "crowdpose_gt",
    "people_to_results", "gt_as_results", "write_results", "read_results", "oks_matrix", "coco_from_dict",
    "load_results", "run_cocoeval", "summarize", "COCO_METRICS", "CROWDPOSE_METRICS", "CROWD_BOUNDARIES",
    "CROWDPOSE_AREA_FACTOR", "PROTOCOLS", "score", "score_results", "check_detections", "load_ground_truth",
    "ScoreResult", "ErrorBreakdown", "error_breakdown", "plot_breakdown",
]
