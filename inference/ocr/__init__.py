"""OCR of scanned pages and photographs: scan cleaning, orientation and script detection, Tesseract reading
(reader), fractions, and typed text on panels in photographs."""
