"""PDF documents to text with pypdf: the text layer of each page, in order, within the text limit.

Scanned pages carry no text layer and are not OCRed; a PDF with no extractable text is refused with that reason.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from detector.config import Limits
from detector.media.errors import MediaError
from detector.media.text import text_media
from detector.media.types import TextMedia

MAX_PDF_PAGES = 2000          # a text limit alone would let an empty-page bomb run for minutes


def decode_pdf(source: Path | bytes, limits: Limits) -> TextMedia:
    import pypdf                        # here: only PDF inputs need it
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)     # its warnings on damaged files become our one error
    try:
        reader = pypdf.PdfReader(source if isinstance(source, Path) else io.BytesIO(source), strict=False)
        if reader.is_encrypted and reader.decrypt("") == 0:
            raise MediaError("unsupported", "the PDF is encrypted with a password")
        pages = reader.pages
        if len(pages) > MAX_PDF_PAGES:
            raise MediaError("too_large", f"the PDF has {len(pages):,} pages, over the limit of {MAX_PDF_PAGES:,}")
        texts, total = [], 0
        for page in pages:
            text = page.extract_text() or ""
            total += len(text)
            if total > limits.max_text_chars:
                raise MediaError("too_large", f"the PDF's text is over the limit of {limits.max_text_chars:,} "
                                              "characters")
            texts.append(text)
    except PdfReadError as exc:
        raise MediaError("corrupt", f"not a readable PDF: {exc}") from exc
    if not "".join(texts).strip():
        raise MediaError("empty", "the PDF has no text layer (scanned pages are not OCRed)")
    return text_media("\n\n".join(texts), "pdf", limits)
