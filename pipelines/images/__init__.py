"""Uploaded images: which S3 notifications name one, and the thumbnail made of it."""

from pipelines.images.notifications import UploadedObject, uploaded_objects
from pipelines.images.thumbnail import Thumbnail, make_thumbnail

__all__ = ["Thumbnail", "UploadedObject", "make_thumbnail", "uploaded_objects"]
