"""Write the bundled sample (sample_data/) from ../shared/data/salinas_a.

Salinas-A becomes a GeoTIFF (204 bands: bands 108-112, 154-167 and 224 dropped, int16) with a
georeference of our choosing (UTM 10N, 3.7 m pixels), and its ground truth becomes two GeoPackages of
polygons on a checkerboard of 20-px blocks: black blocks train, white blocks are reference. A 2-px band
along every block border is left unlabelled, so training patches (up to 7x7) never see a reference pixel.
Run once; the outputs are committed.  python3 scripts/make_sample_data.py [shared_data_dir]
"""
import json
import os
import sys

import numpy as np
import rasterio
import scipy.io
from osgeo import ogr, osr
from rasterio.features import shapes
from rasterio.transform import from_origin

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "sample_data")
NAMES = {1: "Brocoli_green_weeds_1", 10: "Corn_senesced_green_weeds", 11: "Lettuce_romaine_4wk",
         12: "Lettuce_romaine_5wk", 13: "Lettuce_romaine_6wk", 14: "Lettuce_romaine_7wk"}
TRANSFORM = from_origin(615000.0, 4063000.0, 3.7, 3.7)
EPSG = 32610
BLOCK, GAP = 20, 2


def write_polygons(path, labels):
    driver = ogr.GetDriverByName("GPKG")
    if os.path.exists(path):
        driver.DeleteDataSource(path)
    source = driver.CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    layer = source.CreateLayer("labels", srs, ogr.wkbMultiPolygon)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    name_field = ogr.FieldDefn("class_name", ogr.OFTString)
    layer.CreateField(name_field)
    for geometry, value in shapes(labels.astype(np.int32), mask=labels > 0, transform=TRANSFORM):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class_id", int(value))
        feature.SetField("class_name", NAMES[int(value)])
        polygon = ogr.CreateGeometryFromJson(json.dumps(geometry))
        feature.SetGeometry(ogr.ForceToMultiPolygon(polygon))
        layer.CreateFeature(feature)
    source = None


def main(shared):
    cube = scipy.io.loadmat(os.path.join(shared, "salinas_a", "SalinasA.mat"))["salinasA"]
    gt = scipy.io.loadmat(os.path.join(shared, "salinas_a", "SalinasA_gt.mat"))["salinasA_gt"]
    drop = list(range(107, 112)) + list(range(153, 167)) + [223]
    cube = np.delete(cube, drop, axis=2).astype(np.int16)
    os.makedirs(OUT, exist_ok=True)
    profile = dict(driver="GTiff", width=cube.shape[1], height=cube.shape[0], count=cube.shape[2],
                   dtype="int16", crs=f"EPSG:{EPSG}", transform=TRANSFORM, compress="deflate", predictor=2,
                   tiled=True, blockxsize=64, blockysize=64, interleave="pixel")
    with rasterio.open(os.path.join(OUT, "salinas_a.tif"), "w", **profile) as dst:
        dst.write(np.moveaxis(cube, 2, 0))
        dst.update_tags(source="Salinas-A, AVIRIS (GIC UPV/EHU collection); 204 bands, georeference synthetic")
    rows, cols = np.indices(gt.shape)
    checker = ((rows // BLOCK) + (cols // BLOCK)) % 2 == 0
    inner = (rows % BLOCK >= GAP) & (rows % BLOCK < BLOCK - GAP) & (cols % BLOCK >= GAP) & (cols % BLOCK < BLOCK - GAP)
    write_polygons(os.path.join(OUT, "salinas_a_train.gpkg"), np.where(checker & inner, gt, 0))
    write_polygons(os.path.join(OUT, "salinas_a_reference.gpkg"), np.where(~checker & inner, gt, 0))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "data"))
