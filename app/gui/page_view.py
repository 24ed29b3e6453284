"""The page view: a page's image with its blocks outlined, zoom and paging, selection and highlights."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QPainter,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
)

from app.gui.views import DropTarget, pil_to_qimage


class PageView(DropTarget, QGraphicsView):
    """One page at a time; zoom, fit, block outlines. Clicking a block emits ``block_clicked(page, order)``.

    Drops of files are taken here too (the biggest target) and handed on as ``dropped(mime)``. In fit mode the
    page is refitted whenever it changes or the view is resized; a zoom leaves fit mode."""

    block_clicked = Signal(int, int)
    area_selected = Signal(int, object)  # page, (x0, y0, x1, y1) in page points: Shift+drag
    page_changed = Signal(int)
    dropped = Signal(object)  # QMimeData

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.document = None
        self.blocks: list[Any] = []
        self.page = 0
        self.dpi = 96
        self.zoom = 1.0
        self.outline_items: list[QGraphicsRectItem] = []
        self.highlighted: int | None = None
        self.layout_source = None
        self.fit_mode = True
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.show_hint()

    HINT = "Drop PDFs, scans, images, videos or folders here,\nor paste an image (Ctrl+V)."

    def show_hint(self, text: str = HINT) -> None:
        self.scene().clear()
        self.outline_items = []
        hint = self.scene().addText(text)
        hint.setDefaultTextColor(QColor(140, 140, 140))
        hint.setTextWidth(max(240, self.viewport().width() - 40))

    def take_drop(self, mime: Any) -> None:
        self.dropped.emit(mime)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.fit_mode:
            self.fit()

    def show_document(self, document: Any, page: int = 1, blocks_from: Any = None) -> None:
        self.document = document
        self.layout_source = blocks_from or document
        self.show_page(page)

    def page_count(self) -> int:
        return len(self.document.pages) if self.document is not None else 0

    def show_page(self, number: int) -> None:
        if self.document is None:
            self.show_hint()
            return
        if not (1 <= number <= self.page_count()):
            return
        scene = self.scene()
        scene.clear()
        self.outline_items = []
        self.highlighted = None
        self.page = number
        page = self.document.pages[number - 1]
        try:
            image = self.document.render(number, self.dpi)
        except Exception as exc:  # noqa: BLE001 - a page that cannot render shows why, the rest still work
            scene.addText(f"page {number} cannot be shown: {exc}")
            self.page_changed.emit(number)
            return
        scene.addPixmap(QPixmap.fromImage(pil_to_qimage(image)))
        sx = image.width / page.width if page.width else 1.0
        sy = image.height / page.height if page.height else 1.0
        self.scale_to_page = (1 / sx, 1 / sy)  # scene pixels -> page points (a selected area)
        source = self.layout_source.pages[number - 1] if self.layout_source is not None else page
        self.blocks = sorted(source.blocks, key=lambda b: b.order)
        self._outline(lambda x, y: (x * sx, y * sy))
        scene.setSceneRect(QRectF(0, 0, image.width, image.height))
        self.fit() if self.fit_mode else self.apply_zoom()
        self.page_changed.emit(number)

    def _outline(self, to_scene: Any) -> None:
        """Outline the page's blocks; ``to_scene(x, y)`` maps a point of the page (points) into the scene. A box
        that the mapping turns (a deskewed scan) is outlined by the rectangle around its corners."""
        pen = QPen(QColor(42, 122, 184, 160))
        pen.setWidthF(1.0)
        for blk in self.blocks:
            x0, y0, x1, y1 = blk.bbox
            if x1 <= x0 or y1 <= y0:
                continue
            corners = [to_scene(x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
            xs, ys = [c[0] for c in corners], [c[1] for c in corners]
            rect = QGraphicsRectItem(QRectF(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)))
            rect.setPen(pen)
            rect.setData(0, blk.order)
            rect.setToolTip(f"{blk.kind}: {blk.text[:120]}")
            self.scene().addItem(rect)
            self.outline_items.append(rect)

    def show_image(
        self, image: Any, note: str = "", dpi: int | None = None, matrix: Any = None, source_size: Any = None
    ) -> None:
        """Show an image in place of the page (the cleaned scan). An image rendered at ``dpi`` is drawn at the
        page's scale, so switching between the two keeps the zoom. With ``matrix`` (3x3, from the page rendered at
        ``source_size`` pixels to the image's pixels, as ``clean_scan`` gives it) the page's blocks are outlined
        where they sit on the image, as on the page itself."""
        scene = self.scene()
        scene.clear()
        self.outline_items = []
        item = scene.addPixmap(QPixmap.fromImage(pil_to_qimage(image)))
        scale = self.dpi / dpi if dpi else 1.0
        item.setScale(scale)
        if matrix is not None and source_size is not None and self.document is not None and self.page:
            page = self.document.pages[self.page - 1]
            kx = source_size[0] / page.width if page.width else 1.0
            ky = source_size[1] / page.height if page.height else 1.0

            def to_scene(x: float, y: float) -> tuple[float, float]:
                u, v, w = matrix @ (x * kx, y * ky, 1.0)
                return u / w * scale, v / w * scale

            self._outline(to_scene)
        if note:
            label = scene.addText(note)
            label.setDefaultTextColor(QColor(42, 122, 184))
        scene.setSceneRect(QRectF(0, 0, image.width * scale, image.height * scale))
        self.fit() if self.fit_mode else self.apply_zoom()

    def highlight(self, order: int | None) -> None:
        self.highlight_many([] if order is None else [order])
        self.highlighted = order

    def highlight_many(self, orders: list[int]) -> None:
        """Fill the outlines of these blocks (a cited passage can span several) and scroll to the first."""
        wanted = set(orders)
        self.highlighted = orders[0] if orders else None
        first = None
        for item in self.outline_items:
            on = item.data(0) in wanted
            item.setBrush(QBrush(QColor(255, 200, 0, 70)) if on else QBrush(Qt.BrushStyle.NoBrush))
            if on and first is None:
                first = item
        if first is not None:
            self.ensureVisible(first)

    def apply_zoom(self) -> None:
        self.resetTransform()
        self.scale(self.zoom, self.zoom)

    def zoom_by(self, factor: float, anchor: Any = None) -> None:
        """Zoom by ``factor`` keeping the scene point under ``anchor`` (a viewport point: the mouse for Ctrl+wheel)
        where it is; by default the point at the view's centre stays, so the part being read stays in view."""
        viewport_point = anchor if anchor is not None else self.viewport().rect().center()
        before = self.mapToScene(viewport_point)
        self.fit_mode = False
        self.zoom = max(0.1, min(8.0, self.zoom * factor))
        self.apply_zoom()
        moved = self.mapFromScene(before) - viewport_point
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())

    def wheelEvent(self, event: Any) -> None:
        """Ctrl+wheel zooms at the mouse (as in every viewer); the wheel alone scrolls."""
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120
            if steps:
                self.zoom_by(1.25**steps, event.position().toPoint())
            event.accept()
            return
        super().wheelEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        start = getattr(self, "selecting_from", None)
        super().mouseReleaseEvent(event)
        if start is None:
            return
        self.selecting_from = None
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        end = self.mapToScene(event.position().toPoint())
        kx, ky = getattr(self, "scale_to_page", (1.0, 1.0))
        x0, x1 = sorted((start.x() * kx, end.x() * kx))
        y0, y1 = sorted((start.y() * ky, end.y() * ky))
        if x1 - x0 > 2 and y1 - y0 > 2:
            self.area_selected.emit(self.page, (x0, y0, x1, y1))

    def fit(self) -> None:
        self.fit_mode = True
        rect = self.scene().sceneRect()
        if self.document is not None and rect.width() and rect.height():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom = self.transform().m11()

    def mousePressEvent(self, event: Any) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier and self.document is not None:
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)  # Shift+drag selects; a plain drag pans
            self.selecting_from = self.mapToScene(event.position().toPoint())
            super().mousePressEvent(event)
            return
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, QGraphicsRectItem):
            self.highlight(item.data(0))
            self.block_clicked.emit(self.page, int(item.data(0)))
        super().mousePressEvent(event)
