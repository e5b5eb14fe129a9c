"""hsigan:assess — a classification map against reference polygons/points: confusion matrix, OA, AA,
kappa, per-class producer's/user's accuracy and F1, written as HTML and JSON reports.

Reference classes are matched to map values by code (integer field) or by name (text field, using the
class names stored in the map by hsigan:classify). Only the window the reference covers is read."""
import os

import numpy as np

from . import labels as labels_mod
from .config import AssessConfig, check
from .errors import InputError
from .feedback import Feedback
from .metrics import confusion_matrix, summarise
from .outputs import check_job_files
from .results import AssessResult
from .raster import open_raster, read_band
from .styling import read_class_table


def assess(cfg: AssessConfig, feedback: Feedback = None) -> AssessResult:
    feedback = feedback or Feedback()
    check(cfg)  # LABEL_RULE from the config metadata
    if cfg.output_report:
        check_job_files([], (cfg.input, cfg.reference), cfg.output_report)
    map_names = read_class_table(cfg.input)
    with open_raster(cfg.input) as dataset:
        if dataset.count != 1:
            raise InputError("INPUT", f"the raster has {dataset.count} bands; a classification map has one band "
                                      "of class ids (give the map written by hsigan:classify, not the image)")
        if dataset.dtypes[0] not in ("uint8", "uint16", "uint32", "int8", "int16", "int32"):
            raise InputError("INPUT", f"the raster holds {dataset.dtypes[0]} values, not class ids; give a "
                                      "classification map (integer raster)")
        features, _, _, numeric = labels_mod.read_features(cfg.reference, cfg.class_field, "REFERENCE")
        values = [v for _, v in features]
        if numeric:
            table = labels_mod.class_table_from_values(values, True)
            strangers = [i for i in table.ids if map_names and i not in map_names]
            if strangers:
                feedback.warning(f"reference codes {strangers[:10]} are not in the map's legend "
                                 f"{sorted(map_names)[:20]}; is '{cfg.class_field}' the field the model was trained on?")
            table.names = [map_names.get(i, str(i)) for i in table.ids]
        else:
            if not map_names:
                raise InputError("CLASS_FIELD", f"'{cfg.class_field}' holds class names but the map stores none; "
                                                "use a field with the class ids, or a map made by hsigan:classify")
            by_name = {labels_mod.normalise_name(n): i for i, n in map_names.items()}
            unknown = sorted({str(v) for v in values if labels_mod.normalise_name(v) not in by_name})
            if unknown:
                feedback.warning(f"reference classes not in the map's legend are ignored: {unknown[:10]}")
            ids = sorted(map_names)
            table = labels_mod.ClassTable(ids=ids, names=[map_names[i] for i in ids])
        grid = labels_mod.rasterise(cfg.reference, cfg.class_field, dataset, cfg.label_rule, classes=table,
                                    parameter="REFERENCE")
        h, w = grid.index.shape
        predicted, valid = read_band(dataset, grid.row, grid.col, h, w)
        feedback.check_cancel()
    labelled = grid.index >= 0
    unclassified = int((labelled & ~valid).sum())
    if unclassified:
        feedback.warning(f"{unclassified} reference pixels are nodata in the map and are not counted")
    use = labelled & valid
    reference_idx = grid.index[use]
    map_values = predicted[use].astype(np.int64)
    # Map values unknown to the table (other classes) form an extra "other" column.
    index_of = table.index_of()
    predicted_idx = np.array([index_of.get(int(v), len(table.ids)) for v in map_values], dtype=np.int64)
    n = len(table.ids) + (1 if (predicted_idx == len(table.ids)).any() else 0)
    if len(reference_idx) == 0:
        raise InputError("REFERENCE", "no reference pixel falls on a classified pixel of the map")
    if not (predicted_idx < len(table.ids)).any():
        found = sorted(set(np.unique(map_values).tolist()))[:10]
        feedback.warning(f"no map value under the reference matches a reference class: the map holds {found}, "
                         f"the reference {table.ids[:10]}; is INPUT the map of this legend and '{cfg.class_field}' "
                         "the field the model was trained on?")
    matrix = confusion_matrix(reference_idx, predicted_idx, n)
    names = table.names + (["(other)"] if n > len(table.ids) else [])
    present = np.flatnonzero(matrix[:len(table.ids)].sum(1) > 0)
    # Keep classes present in the reference or predicted there.
    keep = sorted(set(present.tolist()) | set(np.flatnonzero(matrix.sum(0) > 0).tolist()))
    matrix = matrix[np.ix_(keep, keep)]
    names = [names[k] for k in keep]
    ids = [table.ids[k] if k < len(table.ids) else None for k in keep]
    summary = summarise(matrix)
    result = dict(oa=float(summary["oa"]), aa=float(summary["aa"]), kappa=float(summary["kappa"]),
                  pixels=int(matrix.sum()), unclassified_reference_pixels=unclassified,
                  class_ids=ids, class_names=names, confusion=matrix.tolist(),
                  producers_accuracy=_clean(summary["recall"]), users_accuracy=_clean(summary["precision"]),
                  f1=_clean(summary["f1"]), support=summary["support"].tolist(),
                  map=os.path.basename(cfg.input), reference=os.path.basename(cfg.reference.split("|")[0]))
    feedback.info(f"OA {result['oa']:.2f}%  AA {result['aa']:.2f}%  kappa {result['kappa']:.4f}  "
                  f"({result['pixels']} reference pixels)")
    if cfg.output_report:
        from .report import write_assessment_report
        write_assessment_report(cfg.output_report, result)
    feedback.progress(100)
    return AssessResult(**result, output_report=cfg.output_report or None)


def _clean(values):
    return [None if not np.isfinite(v) else float(v) for v in values]
