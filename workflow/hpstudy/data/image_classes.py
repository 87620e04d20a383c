"""Which class folders hold an image: a folder with no decodable image is no class.

A class folder holding only a readme (or one stray file that is no image) would otherwise
become a class the model must output and the data never shows, and would put chance at
1/(n+1); a single stray file would even be refused as "a class with a single training image".
The decoder tells images by content, so a class is kept as soon as one of its members decodes:
one decode per class for ordinary data, every member only for a folder that holds no image.
"""

from __future__ import annotations

import zipfile

import numpy as np

from hpstudy.data.decode import decode_image_into, strict_decoding

PROBE_SIZE = 8  # the probe decodes fully, then resizes to this (its pixels are thrown away)


def zip_has_image(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> bool:
    """Whether one of the members ``infos`` of ``archive`` decodes as an image (a member that
    cannot be read is left to the decoding step, which names the damaged archive)."""
    row = np.zeros((PROBE_SIZE, PROBE_SIZE, 3), dtype=np.uint8)
    with strict_decoding():
        for info in infos:
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, EOFError, OSError):
                return True  # not this step's to judge: the decoder refuses the archive
            if not isinstance(decode_image_into(data, row, PROBE_SIZE), str):
                return True
    return False
