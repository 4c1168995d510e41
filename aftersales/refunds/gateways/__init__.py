"""Payment gateways behind one port. Only the sandbox runs; the others show the real request shapes."""

from __future__ import annotations

from .base import (
    CallbackEvent,
    GatewayError,
    GatewayRecord,
    GatewayTimeout,
    PaymentGateway,
    RefundOrder,
    SubmitResult,
)


def get_gateway(name: str) -> PaymentGateway:
    from .alipay import AlipayGateway
    from .sandbox import SandboxGateway
    from .stripe import StripeGateway
    from .wechat import WechatPayGateway

    gateways: dict[str, type[PaymentGateway]] = {
        "sandbox": SandboxGateway, "alipay": AlipayGateway, "wechat": WechatPayGateway, "stripe": StripeGateway,
    }
    try:
        return gateways[name]()
    except KeyError:
        raise GatewayError(f"unknown gateway {name!r}") from None


__all__ = ["CallbackEvent", "GatewayError", "GatewayRecord", "GatewayTimeout", "PaymentGateway", "RefundOrder",
           "SubmitResult", "get_gateway"]
