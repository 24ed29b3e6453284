"""HTML (by its declared encoding), EPUB, Markdown and code files (verbatim), HEIC and AVIF photos (as images): made
here, read into the document model and out as Markdown."""

from __future__ import annotations

import zipfile

import pytest
from PIL import Image

from inference.documents import Status, ingest, open_document, sniff
from inference.errors import IngestError
from inference.tasks.builtin import BuiltinEngine

PAGE = """<!DOCTYPE html>
<html><head>{meta}<title>Caf\u00e9 Zoë</title><style>p {{color: red}}</style><script>var x = "<p>no</p>";</script>
</head><body>
<nav><ul><li><a href="/">Home</a></li><li>Contact us</li></ul></nav>
<h1>Caf\u00e9 menu<a class="mark" href="#menu">#</a></h1>
<p>Best <b>coffee</b>   in
town.<br>Open daily, \u00fcber alles.</p>
<ul><li>Espresso<ul><li>double</li></ul></li><li>Latte</li></ul>
<ol><li>Order</li><li>Pay</li></ol>
<table><caption>Prices</caption><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>2.95</td></tr>
<tr><td colspan="2">Total 2.95</td></tr></table>
<pre>def f():
    return 1<button class="copy">copy</button></pre>
<img src="cup.png" alt="A cup of tea">
<table><tr><td><p>Layout cell paragraph</p></td><td><h2>Side heading</h2></td></tr></table>
<table><tr><td>A framed note</td></tr></table>
<footer>\u00a9 2024 The Caf\u00e9</footer>
</body></html>
"""


def markdown(doc) -> str:
    return BuiltinEngine().parse(doc).markdown


def write_html(path, encoding, meta=""):
    path.write_bytes(PAGE.format(meta=meta).encode(encoding))
    return path


def check_page(doc):
    md = markdown(doc)
    assert doc.metadata["format"] == "html" and doc.metadata["title"] == "Café Zoë"
    assert "# Café menu" in md and "Best coffee in town.\nOpen daily, über alles." in md
    assert "- Espresso\n  - double\n- Latte" in md and "1. Order\n2. Pay" in md
    assert '<td colspan="2">Total 2.95</td>' in md and "Prices" in md
    assert "```\ndef f():\n    return 1\n```" in md
    assert "A cup of tea" in md and "Layout cell paragraph" in md and "## Side heading" in md
    assert "\n\nA framed note\n" in md  # a one-cell table is a paragraph
    assert "<p>" not in md and "<b>" not in md and "var x" not in md and "color: red" not in md
    assert "#\n" not in md and "copy" not in md  # a heading's permalink mark, a code block's button
    assert "Contact us" not in md and "2024 The Café" not in md  # navigation and page footer: furniture
    kinds = {b.text.split()[-1]: b.kind for b in doc.pages[0].blocks}
    assert kinds["us"] == "header" and kinds["Café"] == "footer"  # kept in the JSON


def test_utf8_html_is_read_as_html_not_as_text_with_tags(tmp_path):
    doc = open_document(write_html(tmp_path / "page.html", "utf-8"))
    check_page(doc)
    assert doc.metadata["encoding"] == "utf-8" and not doc.pages[0].attrs.get("notes")


def test_cp1252_html_is_read_by_its_declared_encoding(tmp_path):
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
    doc = open_document(write_html(tmp_path / "page.htm", "cp1252", meta))
    check_page(doc)
    assert doc.metadata["encoding"] == "cp1252"
    undeclared = open_document(write_html(tmp_path / "plain.html", "cp1252"))  # no declaration, not UTF-8
    check_page(undeclared)


def test_a_wrong_declared_encoding_is_overruled_with_a_note(tmp_path):
    lying_utf8 = write_html(tmp_path / "a.html", "cp1252", '<meta charset="utf-8">')
    doc = open_document(lying_utf8)
    check_page(doc)
    assert "declares utf-8 but byte" in doc.pages[0].attrs["notes"][0]
    lying_latin = write_html(tmp_path / "b.html", "utf-8", '<meta charset="iso-8859-1">')
    doc = open_document(lying_latin)
    check_page(doc)  # not "CafÃ©"
    assert "declares iso-8859-1 but is UTF-8" in doc.pages[0].attrs["notes"][0]
    unknown = write_html(tmp_path / "c.html", "utf-8", '<meta charset="x-klingon">')
    assert "unknown encoding" in open_document(unknown).pages[0].attrs["notes"][0]


def test_html_is_found_by_its_content_whatever_its_name(tmp_path):
    page = write_html(tmp_path / "download", "utf-8")
    assert sniff(page) == "html"
    check_page(open_document(page))
    notes = tmp_path / "notes.md"
    notes.write_text("<div>inline HTML in Markdown stays Markdown</div>\n")
    assert open_document(notes).metadata["format"] == "markdown"


def make_epub(path, chapters, drm=False):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        items = "".join(
            f'<item id="c{i}" href="text/c{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(len(chapters))
        )
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        z.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>A small book</dc:title></metadata>'
            f"<manifest>{items}</manifest><spine>{spine}</spine></package>",
        )
        for i, body in enumerate(chapters):
            z.writestr(
                f"OEBPS/text/c{i}.xhtml",
                '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>t'
                f"</title></head><body>{body}</body></html>",
            )
        if drm:
            z.writestr(
                "META-INF/encryption.xml",
                '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                '<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#">'
                '<EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/></EncryptedData>'
                "</encryption>",
            )
    return path


def test_epub_chapters_are_pages_in_spine_order(tmp_path):
    chapters = [
        "<h1>Chapter One</h1><p>It was a dark night.</p><p>Let <math><msub><mi>x</mi><mn>1</mn></msub><mo>=</mo>"
        "<mfenced open='{' close='}'><mn>2</mn></mfenced></math> hold.</p>",
        '<div><span epub:type="pagebreak" title="169">169</span></div><h1>Chapter Two</h1><p>Dawn came, '
        'na\u00efve.<span role="doc-pagebreak">170</span></p>',
    ]
    doc = open_document(make_epub(tmp_path / "book.epub", chapters))
    assert doc.metadata == {"format": "epub", "title": "A small book"}
    assert [p.label for p in doc.pages] == ["Chapter One", "Chapter Two"]
    assert doc.pages[1].text == "Chapter Two\n\nDawn came, naïve."
    assert doc.pages[0].blocks[-1].text == "Let x1={2} hold."  # MathML read, not dropped
    renamed = tmp_path / "book.zip"
    renamed.write_bytes((tmp_path / "book.epub").read_bytes())
    assert sniff(renamed) == "epub"
    with pytest.raises(IngestError, match="DRM"):
        open_document(make_epub(tmp_path / "locked.epub", chapters, drm=True))
    broken = tmp_path / "broken.epub"
    broken.write_bytes((tmp_path / "book.epub").read_bytes()[:200])
    results = ingest([broken, tmp_path / "book.epub"])
    assert "EPUB file is damaged" in results[0].error and results[1].status is Status.COMPLETE


MARKDOWN = """# Notes

Some  text with `code` and *emphasis*.

```python
def f():
    x = 1

    return x
```

- a
  - nested b
    continued

    indented code block
"""


def test_markdown_comes_out_verbatim_with_fenced_code_indentation(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text(MARKDOWN)
    doc = open_document(path)
    code = next(b for b in doc.pages[0].blocks if b.kind == "code")
    assert code.text == "def f():\n    x = 1\n\n    return x" and code.attrs["language"] == "python"
    body = markdown(doc).split("\n", 2)[2]  # after the page marker
    assert body == MARKDOWN


def test_code_files_are_one_verbatim_code_block(tmp_path):
    source = 'def f():\n\treturn """\n```\nnot a fence\n```"""\n'
    path = tmp_path / "tool.py"
    path.write_text(source)
    doc = open_document(path)
    assert [b.kind for b in doc.pages[0].blocks] == ["code"] and doc.metadata["format"] == "python"
    md = markdown(doc)
    assert f"````python\n{source.rstrip()}\n````" in md  # a longer fence than the file's own backticks


@pytest.mark.parametrize("fmt,suffix", [("HEIF", ".heic"), ("AVIF", ".avif")])
def test_heic_and_avif_photos_are_images_not_video(tmp_path, fmt, suffix):
    if fmt == "HEIF":
        pillow_heif = pytest.importorskip("pillow_heif")
        pillow_heif.register_heif_opener()
    path = tmp_path / f"photo{suffix}"
    Image.new("RGB", (120, 80), (200, 30, 30)).save(path, fmt)
    misnamed = tmp_path / "photo.mp4"
    misnamed.write_bytes(path.read_bytes())
    for each in (path, misnamed):
        assert sniff(each) == "image"
        doc = open_document(each)
        assert doc.kind == "image" and doc.pages[0].timestamp is None
        assert (doc.pages[0].width, doc.pages[0].height) == (120, 80)
        red, green, _ = doc.render(1).getpixel((60, 40))
        assert red > 150 and green < 90


def test_html_lists_nest_through_details_and_code_variants_stay_apart(tmp_path):
    page = tmp_path / "api.html"
    page.write_text(
        "<html><body><ul><li>Index</li><li><details><summary>Contents</summary><ul><li>File system<ul>"
        "<li>Promises</li></ul></li></ul></details></li></ul>"
        "<pre><code class='mjs'>import * as fs from 'node:fs';</code><code class='cjs'>const fs = require('node:fs');"
        "</code></pre></body></html>"
    )
    md = markdown(open_document(page))
    assert "- Index\n- Contents\n  - File system\n    - Promises" in md
    assert "import * as fs from 'node:fs';\n\nconst fs = require('node:fs');" in md


def test_an_image_without_alternative_text_leaves_a_placeholder_and_a_decorative_one_none(tmp_path):
    """'a document may look like this:' then a picture with no alt: the Markdown says a picture stands there (its
    file name in the JSON); alt="" (decorative, by the HTML spec) and a 1-pixel tracker say nothing."""
    page = tmp_path / "overview.html"
    page.write_text(
        "<html><body><p>A typical document may look like this:</p><img src='img/sample.png'>"
        "<p>Between.</p><img src='rule.png' alt=''><img src='t.gif' width='1' height='1'>"
        "<img src='chart.png' alt='Sales by month'><p>After.</p></body></html>",
        encoding="utf-8",
    )
    doc = open_document(page)
    figures = [(b.text, b.attrs.get("src")) for b in doc.pages[0].blocks if b.kind == "figure"]
    assert figures == [("", "sample.png"), ("Sales by month", "chart.png")]
    markdown = BuiltinEngine().parse(doc).markdown
    assert "look like this:\n\n<!-- image -->\n\nBetween." in markdown
    assert "<!-- image: Sales by month -->" in markdown
