"""Text that a Markdown renderer, a reader or a layout step used to lose without a word: tags and markup characters,
CSV files read as prose, HTML blocks glued together, fixed-width text whose spacing was collapsed. Each input is
made here and read through ``ingest`` and the builtin parse's Markdown, and checked as a renderer shows it."""

from __future__ import annotations

from markdown_it import MarkdownIt

from inference.documents import ingest
from inference.exports import to_html
from inference.tasks.builtin import BuiltinEngine

RENDERER = MarkdownIt("commonmark").enable("table")


def parsed(path) -> str:
    [result] = ingest([path])
    assert result.error is None, result.error
    return BuiltinEngine().parse(result.document).markdown


def test_tags_and_markup_characters_in_read_text_are_shown_not_swallowed(tmp_path):
    import pymupdf

    notes = tmp_path / "notes.txt"
    notes.write_text(
        "The file <config> holds List<T> values; a < b > c.\n"
        "AT&T writes &amp; for an ampersand, and 2*3*4 = 24.\n"
        "# of items: 5\n\n> not a quote\n",
        encoding="utf-8",
    )
    html = RENDERER.render(parsed(notes))
    assert "The file &lt;config&gt; holds List&lt;T&gt; values; a &lt; b &gt; c." in html
    assert "AT&amp;T writes &amp;amp; for an ampersand, and 2*3*4 = 24." in html
    assert "# of items: 5" in html and "<h1>" not in html  # a plain text file's "#" line is text
    assert "<p>&gt; not a quote</p>" in html

    page = tmp_path / "tags.html"
    page.write_text(
        "<html><body><h2>The &lt;config&gt; element</h2><p>Put &lt;name&gt; inside.</p>"
        "<ul><li>&lt;T&gt; is generic</li></ul><table><tr><th>Tag</th><th>Use</th></tr>"
        "<tr><td>&lt;b&gt;</td><td>bold</td></tr></table></body></html>",
        encoding="utf-8",
    )
    html = RENDERER.render(parsed(page))
    assert "<h2>The &lt;config&gt; element</h2>" in html and "<p>Put &lt;name&gt; inside.</p>" in html
    assert "<li>&lt;T&gt; is generic</li>" in html and "<td>&lt;b&gt;</td>" in html

    pdf = tmp_path / "manual.pdf"
    with pymupdf.open() as doc:
        doc.new_page().insert_text((72, 72), "Set <timeout> in the <config> section.", fontname="helv", fontsize=11)
        doc.save(pdf)
    html = RENDERER.render(parsed(pdf))
    assert "Set &lt;timeout&gt; in the &lt;config&gt; section." in html

    source = tmp_path / "kept.md"  # a Markdown file's own markup is its author's: written as it is
    source.write_text("# Kept\n\nA <b>bold</b> word and `<code>` stay.\n", encoding="utf-8")
    md = parsed(source)
    assert "A <b>bold</b> word and `<code>` stay." in md and "<b>bold</b>" in RENDERER.render(md)


def test_escaped_text_renders_exactly_as_it_was_read():
    import html

    from inference.documents.markup import escape_heading, escape_markdown

    for text in [
        "List<T> and <div class='x'> and </p> and <!-- c --> and <http://example.org>",
        "&copy; &#169; &#xA9; AT&T",
        "2*3*4 and __init__.py, snake_case and _x_",
        "C:\\temp\\*.txt and a \\<b>",
        "Foo\n---",
        "Bar\n===",
        "- - -",
        "```python",
        "~~~",
        "#5 is fine and # of items",
    ]:
        assert RENDERER.render(escape_markdown(text)) == f"<p>{html.escape(text, quote=False)}</p>\n", text
    assert RENDERER.render(escape_markdown("use `<T>` here")) == "<p>use <code>&lt;T&gt;</code> here</p>\n"
    assert RENDERER.render(f"## {escape_heading('Section # and <T>')}") == "<h2>Section # and &lt;T&gt;</h2>\n"
    assert RENDERER.render(f"## {escape_heading('Issue #')}") == "<h2>Issue #</h2>\n"


def test_csv_and_tsv_files_come_out_as_tables_in_their_encoding_and_delimiter(tmp_path):
    from inference.documents import Status

    prices = tmp_path / "prices.csv"  # semicolons, cp1252, a quoted field holding the delimiter and a line break
    prices.write_bytes('Name;Menge;Preis\nÄpfel;3;"1,20 €"\n"Birne; reif";12;"0,50\nim Angebot"\n'.encode("cp1252"))
    [result] = ingest([prices])
    doc = result.document
    assert doc.metadata == {"format": "csv", "encoding": "cp1252", "delimiter": ";"} and doc.status == Status.COMPLETE
    assert doc.pages[0].blocks[0].rows == [
        ["Name", "Menge", "Preis"],
        ["Äpfel", "3", "1,20 €"],
        ["Birne; reif", "12", "0,50 im Angebot"],
    ]
    assert parsed(prices).endswith(
        "| Name | Menge | Preis |\n|---|---|---|\n| Äpfel | 3 | 1,20 € |\n| Birne; reif | 12 | 0,50 im Angebot |\n"
    )

    sheet = tmp_path / "readings.tsv"  # UTF-16 with its byte-order mark, numbers only
    sheet.write_bytes("x\ty\n1\t2.5\n3\t4.5\n".encode("utf-16"))
    md = parsed(sheet)
    assert md == "<!-- page 1 -->\n\n| x | y |\n|---|---|\n| 1 | 2.5 |\n| 3 | 4.5 |\n"  # no "no readable text"
    assert "<table>" in RENDERER.render(md)


def test_a_ragged_csv_is_a_padded_table_with_a_note(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,name,city\n1,Ada,London\n2,Bob\n3,Cy,Paris,extra\n", encoding="utf-8")
    [result] = ingest([ragged])
    assert result.error is None and not result.document.errors
    assert result.document.pages[0].blocks[0].rows == [
        ["id", "name", "city", ""],
        ["1", "Ada", "London", ""],
        ["2", "Bob", "", ""],
        ["3", "Cy", "Paris", "extra"],
    ]
    md = parsed(ragged)
    note = (
        "<!-- note: the rows have different numbers of fields (2 to 4, most have 3; the first that differs is "
        "record 3): shorter rows were padded with empty cells -->"
    )
    assert note in md and "| 3 | Cy | Paris | extra |" in md


def test_a_huge_csv_is_bounded_like_a_sheet_and_says_so(tmp_path):
    from inference.documents import Status

    long = tmp_path / "long.csv"
    long.write_text("n,square\n" + "".join(f"{i},{i * i}\n" for i in range(12_000)), encoding="utf-8")
    [result] = ingest([long])
    doc = result.document
    rows = doc.pages[0].blocks[0].rows
    assert len(rows) == 10_000 and rows[-1] == ["9998", str(9998 * 9998)]
    cut = "only the first 10,000 rows were read (the bound that keeps a huge file readable)"
    assert doc.status == Status.PARTIAL and doc.pages[0].attrs["notes"] == [cut]
    assert [(e.message, e.error_type) for e in doc.errors] == [(cut, "LimitError")]

    wide = tmp_path / "wide.csv"
    wide.write_text("\n".join(",".join(f"r{r}c{c}" for c in range(250)) for r in range(3)) + "\n", encoding="utf-8")
    [result] = ingest([wide])
    assert [len(r) for r in result.document.pages[0].blocks[0].rows] == [200, 200, 200]
    assert result.document.pages[0].attrs["notes"] == [
        "only the first 200 columns were read (the bound that keeps a huge file readable)"
    ]


def test_html_blocks_written_without_whitespace_between_them_stay_apart(tmp_path):
    page = tmp_path / "glued.html"
    page.write_text(
        "<html><body><h1>Title</h1><h2>Sub</h2><p>Text</p><h3>Unclosed<h4>Inner</h4>Body text"
        "<h2><div>Two</div><div>parts</div></h2><ul><li><h5>Term</h5><p>its meaning</p></li><li><p>One</p><p>two"
        "</p></li></ul><table><tr><th><h6>Name</h6><small>(full)</small></th><th>Age</th></tr><tr><td>"
        "<blockquote>Ada</blockquote><blockquote>Lovelace</blockquote></td><td>36</td></tr></table></body></html>",
        encoding="utf-8",
    )
    md = parsed(page)
    assert md == (
        "<!-- page 1 -->\n\n# Title\n\n## Sub\n\nText\n\n### Unclosed\n\n#### Inner\n\nBody text\n\n## Two parts\n\n"
        "- Term its meaning\n- One two\n\n| Name (full) | Age |\n|---|---|\n| Ada Lovelace | 36 |\n"
    )


def test_text_set_out_in_fixed_width_columns_keeps_its_spacing(tmp_path):
    notes = tmp_path / "report.txt"
    notes.write_text(
        "Quarterly figures follow.\n\n"
        "Region      Q1      Q2\nNorth      120      95\nSouth       80     110\n\n"
        "+-------+-----+\n| Name  | Age |\n+-------+-----+\n| Ada   |  36 |\n+-------+-----+\n\n"
        "┌────┬────┐\n│ x  │ y  │\n└────┴────┘\n\n"
        "key\tvalue\nwidth\t80\nheight\t24\n\n"
        "```\ndef f():\n    return 1\n```\n\n"
        "Prose keeps one space.  Two after a full stop\nare a habit, not a column.  So this line and\n"
        "the next are a paragraph.  As they were.\n",
        encoding="utf-8",
    )
    md = parsed(notes)
    assert md == (
        "<!-- page 1 -->\n\nQuarterly figures follow.\n\n"
        "```\nRegion      Q1      Q2\nNorth      120      95\nSouth       80     110\n```\n\n"
        "```\n+-------+-----+\n| Name  | Age |\n+-------+-----+\n| Ada   |  36 |\n+-------+-----+\n```\n\n"
        "```\n┌────┬────┐\n│ x  │ y  │\n└────┴────┘\n```\n\n"
        "```\nkey\tvalue\nwidth\t80\nheight\t24\n```\n\n"
        "```\ndef f():\n    return 1\n```\n\n"
        "Prose keeps one space. Two after a full stop\nare a habit, not a column. So this line and\n"
        "the next are a paragraph. As they were.\n"
    )
    assert "<pre><code>Region      Q1      Q2\nNorth      120      95" in RENDERER.render(md)


def test_a_monospaced_listing_in_a_pdf_is_a_fenced_code_block_with_its_indentation(tmp_path):
    import pymupdf

    struct = [
        "struct config {",
        "    int width;   /* px */",
        "    struct {",
        "        char r, g, b;",
        "    } colour;",
        "};",
    ]
    function = ["def area(w, h):", "    if w < 0:", "        raise ValueError(w)", "", "    return w * h"]
    pdf = tmp_path / "manual.pdf"
    with pymupdf.open() as doc:
        page = doc.new_page()
        y = 72.0

        def put(text, font="helv", x=72.0, step=14.0, before=0.0):
            nonlocal y
            y += before
            page.insert_text((x, y), text, fontname=font, fontsize=10)
            y += step

        put("The device keeps its settings in a small struct:", step=20)
        for line in struct:  # indentation drawn by position, as typesetters do
            put(line.lstrip(), "cour", 72 + 6.0 * (len(line) - len(line.lstrip())), 12)
        put("Each field is one byte wide, and the function below is called", before=8)
        put("configure_everything_now()", "cour")  # an identifier that wrapped: part of its paragraph
        put("when the area is needed.", step=20)
        for line in function:  # indentation written as spaces
            put(line, "cour", step=12)
        put("After the listing the text goes on.", before=8)
        doc.save(pdf)
    md = parsed(pdf)
    assert md == (
        "<!-- page 1 -->\n\nThe device keeps its settings in a small struct:\n\n"
        "```\nstruct config {\n    int width;   /* px */\n    struct {\n        char r, g, b;\n    } colour;\n"
        "};\n```\n\n"
        "Each field is one byte wide, and the function below is called configure_everything_now() when the area is "
        "needed.\n\n"
        "```\ndef area(w, h):\n    if w < 0:\n        raise ValueError(w)\n\n    return w * h\n```\n\n"
        "After the listing the text goes on.\n"
    )
    [result] = ingest([pdf])
    page = to_html(BuiltinEngine().parse(result.document))  # the HTML export keeps the listing verbatim too
    assert "<pre><code>def area(w, h):\n    if w &lt; 0:\n        raise ValueError(w)\n" in page


def test_a_page_typed_in_a_typewriter_face_stays_prose_except_its_code(tmp_path):
    import pymupdf

    typed = [
        "It was a cold morning when the letter",
        "came. Nobody in the house had expected it.",
        "",
        "The program it held was short:",
        "",
        "int main(void) {",
        "    return 0;",
        "}",
        "",
        "That is all there is to it, really.",
    ]
    pdf = tmp_path / "letter.pdf"
    with pymupdf.open() as doc:
        page = doc.new_page()
        for i, line in enumerate(typed):
            page.insert_text((72, 72 + 12 * i), line, fontname="cour", fontsize=10)
        doc.save(pdf)
    assert parsed(pdf) == (
        "<!-- page 1 -->\n\nIt was a cold morning when the letter came. Nobody in the house had expected it.\n\n"
        "The program it held was short:\n\n```\nint main(void) {\n    return 0;\n}\n```\n\n"
        "That is all there is to it, really.\n"
    )
