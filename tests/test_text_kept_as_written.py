"""Text that a Markdown renderer, a reader or a layout step used to lose without a word: tags and markup characters,
CSV files read as prose, HTML blocks glued together, fixed-width text whose spacing was collapsed. Each input is
made here and read through ``ingest`` and the builtin parse's Markdown, and checked as a renderer shows it."""

from __future__ import annotations

from markdown_it import MarkdownIt

from inference.documents import ingest
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
