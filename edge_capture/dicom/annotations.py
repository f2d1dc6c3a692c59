"""The expert's marks beside a still: a Softcopy Presentation State, never pixels burned into the image.

Guidance is data (ARCHITECTURE.md): the marks on the board when a still is taken are stored as a separate
object in the same study, in its own series, that references the image. A MONOCHROME2 image gets a
Grayscale Softcopy Presentation State, an RGB one a Color Softcopy Presentation State (sRGB ICC profile).

Marks arrive in normalised image coordinates (PROTOCOL.md §3); DICOM PIXEL units put 0.0\\0.0 at the top-left
corner of the top-left pixel and Columns\\Rows at the bottom-right corner of the last one, so a point is simply
(x·Columns, y·Rows), written column first. Each mark becomes:

- arrow: a POLYLINE tail → head, and a second short POLYLINE for the arrowhead (wing, head, wing), since
  DICOM's graphic types have no arrow a viewer is sure to draw;
- circle: a CIRCLE (centre, a point on the rim), not filled;
- freehand: a POLYLINE through its points.

Pointers are not marks and are ignored. Marks of one colour share a graphic layer whose recommended
display colour is that colour (CIELab, PS3.3 C.10.7.1.1).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import cv2
import numpy as np
from PIL import ImageCms
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ColorSoftcopyPresentationStateStorage,
    ExplicitVRLittleEndian,
    GrayscaleSoftcopyPresentationStateStorage,
    generate_uid,
)

from edge_capture.datachannel import Mark
from edge_capture.dicom.ultrasound import StudyContext, common_dataset

logger = logging.getLogger(__name__)

DEFAULT_COLOUR = "#ffd700"  # what the console draws a mark without a colour in
ARROWHEAD_ANGLE = math.radians(25)
ARROWHEAD_FRACTION = 0.25  # of the arrow's length
ARROWHEAD_MAX = 0.03  # of the image's diagonal

Point = tuple[float, float]


def srgb_profile() -> bytes:
    """An sRGB ICC profile (littleCMS via Pillow), what the console's screen assumes."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def cielab(colour: str) -> list[int]:
    """#rrggbb as DICOM's scaled CIELab: L* 0..100 and a*, b* -128..127 onto 0..65535."""
    rgb = np.array([[[int(colour[i : i + 2], 16) / 255.0 for i in (1, 3, 5)]]], np.float32)
    lightness, a, b = (float(v) for v in cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0, 0])
    return [round(lightness * 65535 / 100), round((a + 128) * 65535 / 255), round((b + 128) * 65535 / 255)]


def arrowhead(tail: Point, head: Point, columns: int, rows: int) -> list[Point]:
    """Two wings around the head, in pixels; empty for an arrow of zero length."""
    dx, dy = head[0] - tail[0], head[1] - tail[1]
    length = math.hypot(dx, dy)
    if length == 0:
        return []
    size = min(length * ARROWHEAD_FRACTION, math.hypot(columns, rows) * ARROWHEAD_MAX)
    back = math.atan2(-dy, -dx)
    wings = [
        (head[0] + size * math.cos(back + turn), head[1] + size * math.sin(back + turn))
        for turn in (ARROWHEAD_ANGLE, -ARROWHEAD_ANGLE)
    ]
    return [wings[0], head, wings[1]]


def _graphic(kind: str, points: list[Point]) -> Dataset:
    item = Dataset()
    item.GraphicAnnotationUnits = "PIXEL"
    item.GraphicDimensions = 2
    item.NumberOfGraphicPoints = len(points)
    item.GraphicData = [float(v) for point in points for v in point]
    item.GraphicType = kind
    if kind == "CIRCLE" or (len(points) > 2 and points[0] == points[-1]):
        item.GraphicFilled = "N"  # required (1C) for a closed shape: drawn as an outline
    return item


def graphic_objects(mark: Mark, columns: int, rows: int) -> list[Dataset]:
    """The graphic objects drawing one mark on a columns×rows image."""
    points = [(x * columns, y * rows) for x, y in mark.points]
    if mark.kind == "circle":
        return [_graphic("CIRCLE", points)]
    objects = [_graphic("POLYLINE", points)]
    if mark.kind == "arrow":
        head = arrowhead(points[0], points[1], columns, rows)
        if head:
            objects.append(_graphic("POLYLINE", head))
    return objects


def _layer_name(colour: str) -> str:
    return f"MARKS_{colour[1:].upper()}"


def build_presentation_state(
    image: Dataset,
    marks: Iterable[object],
    context: StudyContext,
    when_ns: int,
    *,
    sop_instance_uid: str | None = None,
    instance_number: int = 1,
) -> Dataset | None:
    """A GSPS (grey image) or CSPS (colour image) drawing the marks on `image`; None when there are none."""
    drawn = [m for m in marks if isinstance(m, Mark)]
    if not drawn:
        return None
    grey = image.PhotometricInterpretation == "MONOCHROME2"
    sop_class = GrayscaleSoftcopyPresentationStateStorage if grey else ColorSoftcopyPresentationStateStorage
    side = str(image.get("Laterality", "")) or "none"  # the series follows the image's, per side
    ds = common_dataset(context, sop_class, sop_instance_uid or generate_uid(), "marks", side, when_ns)
    created_date, created_time = ds.ContentDate, ds.ContentTime
    del ds.ContentDate, ds.ContentTime  # a presentation state has its creation date and time instead
    ds.Modality = "PR"
    ds.SeriesDescription = f"Expert marks{'' if side == 'none' else ' ' + side}"
    ds.BodyPartExamined = image.BodyPartExamined
    if side != "none":
        ds.Laterality = side
    ds.InstanceNumber = instance_number
    ds.ContentLabel = "MARKS"
    ds.ContentDescription = "Guidance marks on the image when it was captured"
    ds.PresentationCreationDate, ds.PresentationCreationTime = created_date, created_time
    ds.ContentCreatorName = context.expert_name

    referenced = Dataset()
    referenced.ReferencedSOPClassUID = image.SOPClassUID
    referenced.ReferencedSOPInstanceUID = image.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = image.SeriesInstanceUID
    series.ReferencedImageSequence = Sequence([referenced])
    ds.ReferencedSeriesSequence = Sequence([series])

    columns, rows = int(image.Columns), int(image.Rows)
    area = Dataset()
    area.DisplayedAreaTopLeftHandCorner = [1, 1]
    area.DisplayedAreaBottomRightHandCorner = [columns, rows]
    area.PresentationSizeMode = "SCALE TO FIT"
    area.PresentationPixelAspectRatio = [1, 1]
    ds.DisplayedAreaSelectionSequence = Sequence([area])

    by_layer: dict[str, list[Dataset]] = {}
    colours: dict[str, str] = {}
    for mark in drawn:
        colour = (mark.color or DEFAULT_COLOUR).lower()
        layer = _layer_name(colour)
        colours[layer] = colour
        by_layer.setdefault(layer, []).extend(graphic_objects(mark, columns, rows))
    layers, annotations = [], []
    for order, (name, objects) in enumerate(by_layer.items(), start=1):
        layer_item = Dataset()
        layer_item.GraphicLayer = name
        layer_item.GraphicLayerOrder = order
        layer_item.GraphicLayerRecommendedDisplayCIELabValue = cielab(colours[name])
        layer_item.GraphicLayerDescription = f"guidance marks in {colours[name]}"
        layers.append(layer_item)
        annotation = Dataset()
        annotation.ReferencedImageSequence = Sequence([referenced])
        annotation.GraphicLayer = name
        annotation.GraphicObjectSequence = Sequence(objects)
        annotations.append(annotation)
    ds.GraphicAnnotationSequence = Sequence(annotations)
    ds.GraphicLayerSequence = Sequence(layers)

    if grey:
        ds.PresentationLUTShape = "IDENTITY"
    else:
        ds.ICCProfile = srgb_profile()
        ds.ColorSpace = "SRGB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    logger.info("presentation state %s: %s marks on %s", ds.SOPInstanceUID, len(drawn), image.SOPInstanceUID)
    return ds
