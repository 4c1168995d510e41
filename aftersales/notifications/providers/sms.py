"""The SMS port. The provider is chosen by AFTERSALES_SMS_PROVIDER: "sandbox" (the default: keeps the
messages in memory, for development and tests) or "twilio" (its Messages API request shape)."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings


class SmsError(Exception):
    pass


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str


class SmsProvider(Protocol):
    def send(self, message: SmsMessage) -> str:
        """Sends one message and returns the provider's id for it; raises SmsError when refused."""


class SandboxSmsProvider:
    """Sends nothing; records what would have gone out, in order."""

    sent: list[SmsMessage] = []
    _lock = threading.Lock()

    def send(self, message: SmsMessage) -> str:
        with self._lock:
            self.sent.append(message)
            return f"sandbox-{len(self.sent)}"

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls.sent.clear()


@dataclass(frozen=True)
class HttpRequest:
    url: str
    headers: dict[str, str]
    body: bytes


class TwilioSmsProvider:
    """Twilio's Messages resource: a form POST with basic auth, answered with the message as JSON."""

    def __init__(self, *, account_sid: str, auth_token: str, sender: str, timeout: float = 10.0,
                 base_url: str = "https://api.twilio.com") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sender = sender
        self.timeout = timeout
        self.base_url = base_url.rstrip("/")

    def build_request(self, message: SmsMessage) -> HttpRequest:
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return HttpRequest(
            url=f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json",
            headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/x-www-form-urlencoded"},
            body=urllib.parse.urlencode({"To": message.to, "From": self.sender, "Body": message.body}).encode(),
        )

    def send(self, message: SmsMessage) -> str:
        request = self.build_request(message)
        if not request.url.startswith(("https://", "http://")):
            raise SmsError("the SMS provider URL must be http(s)")
        http_request = urllib.request.Request(request.url, data=request.body, headers=request.headers,  # noqa: S310
                                              method="POST")
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as response:  # noqa: S310 (scheme checked above)
                answer = json.loads(response.read() or b"{}")
        except Exception as exc:
            raise SmsError(str(exc)) from exc
        return str(answer.get("sid", ""))


def get_provider() -> SmsProvider:
    name = getattr(settings, "AFTERSALES_SMS_PROVIDER", "sandbox")
    if name == "twilio":
        return TwilioSmsProvider(account_sid=settings.AFTERSALES_TWILIO_ACCOUNT_SID,
                                 auth_token=settings.AFTERSALES_TWILIO_AUTH_TOKEN,
                                 sender=settings.AFTERSALES_TWILIO_FROM)
    return SandboxSmsProvider()
