"""The return slip (退货单): a one-page PDF the buyer prints and puts in (or on) the parcel.

The case number is both a Code 128 barcode, for the warehouse's scanner, and a QR code, for a phone;
it is also printed as text, so the slip works when neither can be read.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode import code128, qr
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A5
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

# A CID font that every PDF reader ships (Adobe's Asian font packs), so the PDF embeds no font file.
CJK_FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


@dataclass(frozen=True)
class SlipLine:
    sku: str
    name: str
    quantity: int


@dataclass(frozen=True)
class ReturnSlip:
    case_number: str
    store_name: str
    recipient: str
    phone: str
    address: str
    lines: Sequence[SlipLine]
    method: str = ""
    tracking: str = ""


def render_return_slip(slip: ReturnSlip) -> bytes:
    buffer = io.BytesIO()
    width, height = A5
    pdf = canvas.Canvas(buffer, pagesize=A5, pageCompression=0)
    pdf.setTitle(f"Return slip {slip.case_number}")
    pdf.setAuthor(slip.store_name)
    margin = 12 * mm
    y = height - margin

    pdf.setFont(CJK_FONT, 16)
    pdf.drawString(margin, y - 6 * mm, f"退货单 Return slip · {slip.store_name}")
    y -= 14 * mm
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(margin, y, slip.case_number)

    barcode = code128.Code128(slip.case_number, barHeight=14 * mm, barWidth=0.35 * mm)
    barcode.drawOn(pdf, margin - 6 * mm, y - 20 * mm)
    qr_widget = qr.QrCodeWidget(slip.case_number)
    x0, y0, x1, y1 = qr_widget.getBounds()
    size = 30 * mm
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(qr_widget)
    renderPDF.draw(drawing, pdf, width - margin - size, y - 24 * mm)
    y -= 32 * mm

    pdf.setFont(CJK_FONT, 11)
    for text in (
        "寄回地址 Return address:",
        f"{slip.recipient}  {slip.phone}",
        slip.address,
        *([f"方式 Method: {slip.method}  {slip.tracking}"] if slip.method else []),
        "",
        "商品 Items:",
        *(f"{line.quantity} × {line.sku}  {line.name}" for line in slip.lines),
        "",
        "请将本单放入包裹内 / Put this slip inside the parcel.",
    ):
        pdf.drawString(margin, y, text)
        y -= 6 * mm
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
