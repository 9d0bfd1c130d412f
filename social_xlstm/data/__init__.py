"""Data layer: importers, the canonical dataset directory, the demo network, windows."""

from social_xlstm.data.dataset import Dataset, read_dataset, write_dataset

__all__ = ["Dataset", "read_dataset", "write_dataset"]
