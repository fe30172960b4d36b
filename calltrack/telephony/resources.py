"""HTTP resources for calls.

Webhooks (provider signatures, no API key):
- ``POST /v1/webhooks/twilio/voice`` answers TwiML that forwards the call; ``/status`` and
  ``/recording`` take the callbacks. Twilio and SignalWire sign with X-Twilio-Signature;
  Telnyx TeXML posts the same fields signed with ed25519, and is accepted here too.
- ``POST /v1/webhooks/telnyx``: Telnyx Call Control JSON events.
- ``POST /v1/webhooks/calls``: our own signed JSON for Asterisk, FreeSWITCH or any PBX.

Every webhook answers only after the event has committed; a bad signature answers 403 and
stores nothing; a malformed payload 400.

Account API (``Authorization: Bearer``): ``GET /v1/calls``, ``GET /v1/calls/{id}``,
``GET /v1/calls/{id}/explain``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from urllib.parse import parse_qs

from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.clock import Clock
from calltrack.config import HttpConfig, TelephonyConfig
from calltrack.telephony import pbx, telnyx, twilio
from calltrack.telephony.events import BadSignature, CallEvent, InvalidEvent
from calltrack.telephony.service import TelephonyService
from calltrack.telephony.store import Credential, Ingested
from calltrack.web import params
from calltrack.web.auth import require_account
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, body_bytes, query_params

logger = logging.getLogger(__name__)

XML = "text/xml; charset=utf-8"
NOT_IN_SERVICE = "We are sorry. The number you have called is not in service."


_refused: dict[str, list[float]] = {}  # provider → [refusals since the last log line, when logged]


def _forged(provider: str) -> ApiError:
    """403, and a warning: at most one a minute per provider, with the count since the last, so
    a wrong secret shows in the logs and a flood of forgeries does not flood them."""
    seen = _refused.setdefault(provider, [0.0, float("-inf")])
    seen[0] += 1
    now = time.monotonic()
    if now - seen[1] >= 60:
        logger.warning("refused %d %s webhook deliveries with a missing, wrong or stale signature (public URL or secret mismatch?)",
                       int(seen[0]), provider, extra={"provider": provider, "refused": int(seen[0])})
        seen[0], seen[1] = 0.0, now
    return ApiError(403, "bad_signature", f"the {provider} signature is missing, wrong or stale; nothing was stored")


MAX_FORM_FIELDS = 200


def _form_parsed_by_twisted(request: Request, raw: bytes) -> dict[str, list[str]] | None:
    """The form as Twisted already parsed it into ``request.args``, decoded as
    ``urllib.parse.parse_qs`` would decode it; None when the two parsers could disagree.

    Twisted parses every form post before any resource sees it; parsing it again cost as much
    as the signature check. Its args mix in the query string's, and it splits on ";" and drops
    a field without "=", where ``parse_qs`` does neither: so only a post with no query string,
    no ";" and exactly one parsed value per "&"-separated field is taken as it stands.
    """
    if b"?" in request.uri or b";" in raw or not raw:
        return None
    args = request.args
    fields = raw.count(b"&") + 1
    if fields > MAX_FORM_FIELDS or sum(map(len, args.values())) != fields:
        return None
    form: dict[str, list[str]] = {}
    try:
        for k, vs in args.items():
            # parse_qs decodes percent-escapes with errors="replace"; so does this.
            form[k.decode("utf-8", "replace")] = [vs[0].decode("utf-8", "replace")] if len(vs) == 1 else [v.decode("utf-8", "replace") for v in vs]
    except AttributeError:  # not bytes: not Twisted's parse
        return None
    return form


class TelephonyResources:
    def __init__(
        self,
        telephony: TelephonyService,
        accounts: AccountsService,
        clock: Clock,
        http: HttpConfig,
        config: TelephonyConfig,
    ) -> None:
        self._telephony = telephony
        self._accounts = accounts
        self._clock = clock
        self._base = http.public_base_url.rstrip("/")
        self._config = config

    def register(self, router: Router) -> None:
        router.add("POST", r"/v1/webhooks/twilio/voice", self.twilio_voice, name="/v1/webhooks/twilio/voice")
        router.add("POST", r"/v1/webhooks/twilio/status", self.twilio_status, name="/v1/webhooks/twilio/status")
        router.add("POST", r"/v1/webhooks/twilio/recording", self.twilio_recording, name="/v1/webhooks/twilio/recording")
        router.add("POST", r"/v1/webhooks/telnyx", self.telnyx_event, name="/v1/webhooks/telnyx")
        router.add("POST", r"/v1/webhooks/calls", self.pbx_event, name="/v1/webhooks/calls")
        router.add("GET", r"/v1/calls", self.list_calls, name="/v1/calls")
        router.add("GET", r"/v1/calls/(?P<call_id>\d+)", self.get_call, name="/v1/calls/{id}")
        router.add("GET", r"/v1/calls/(?P<call_id>\d+)/explain", self.explain, name="/v1/calls/{id}/explain")

    # -- Twilio-style form posts -----------------------------------------------------------

    def _form(self, request: Request) -> dict[str, list[str]]:
        ctype = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise ApiError(415, "unsupported_media_type", "Twilio-style webhooks are application/x-www-form-urlencoded posts")
        raw = body_bytes(request)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "malformed_body", "the form body is not UTF-8") from None
        parsed = _form_parsed_by_twisted(request, raw)
        if parsed is not None:
            return parsed
        try:
            return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            raise ApiError(400, "malformed_body", "the form has too many fields") from None

    async def _twilio_account(self, request: Request, form: dict[str, list[str]]) -> int:
        """The account whose secret signed this post (Twilio/SignalWire, or Telnyx TeXML)."""
        first = lambda name: (form.get(name) or [None])[0]  # noqa: E731
        # A child leg's "To" is the forwarding target; its parent call tells the account.
        refs = [r for r in (first("ParentCallSid"), first("CallSid")) if r]
        to = None if first("ParentCallSid") else first("To") or first("Called")
        signature = request.getHeader("x-twilio-signature")
        if signature is None and request.getHeader("telnyx-signature-ed25519") is not None:
            creds = await self._telephony.candidate_credentials("telnyx", to)
            return await self._resolve("telnyx", self._telnyx_signers(request, creds), to, refs)
        account_sid = first("AccountSid") or ""
        if not signature or not account_sid:
            self._telephony.metrics.count("twilio", "bad_signature")
            raise _forged("Twilio")
        url = self._base + request.uri.decode("utf-8", "replace")
        signers = []
        for cred in await self._telephony.twilio_credentials(account_sid[:64]):
            try:
                twilio.verify_signature(url, form, signature, cred.secret)
            except BadSignature:
                continue
            signers.append(cred.account_id)
        return await self._resolve("twilio", signers, to, refs)

    async def _resolve(self, provider: str, signers: list[int], called_raw: str | None, call_refs: Sequence[str]) -> int:
        """The one account among those whose secret verified the delivery.

        Several tenants may share one provider account (an agency running its clients' numbers
        from one Twilio account): then the dialled number's owner, or the account that already
        holds the call, decides; a delivery that cannot be told apart is refused, not guessed.
        """
        if not signers:
            self._telephony.metrics.count(provider, "bad_signature")
            raise _forged({"twilio": "Twilio", "telnyx": "Telnyx", "pbx": "X-CT-Signature"}[provider])
        account_id = await self._telephony.resolve_account(provider, sorted(set(signers)), called_raw, call_refs)
        if account_id is None:
            self._telephony.metrics.count(provider, "ambiguous")
            raise ApiError(
                403, "ambiguous_account",
                "the signature is valid for several accounts and neither the number dialled nor the call tells which; nothing was stored",
            )
        return account_id

    def _telnyx_signers(self, request: Request, creds: Sequence[Credential]) -> list[int]:
        signers = []
        for cred in creds:
            try:
                telnyx.verify_signature(
                    body_bytes(request),
                    request.getHeader("telnyx-signature-ed25519"),
                    request.getHeader("telnyx-timestamp"),
                    [cred.secret],
                    now=self._clock.seconds(),
                    tolerance=self._config.signature_tolerance_seconds,
                )
            except BadSignature:
                continue
            signers.append(cred.account_id)
        return signers

    async def _ingest(self, account_id: int, event: CallEvent) -> Ingested:
        return await self._telephony.ingest(account_id, event)

    def _parse(self, provider: str, parse: object, *args: object) -> CallEvent:
        try:
            return parse(*args)  # type: ignore[operator, no-any-return]
        except InvalidEvent as e:
            self._telephony.metrics.count(provider, "invalid")
            raise ApiError(400, "invalid_event", str(e)) from None

    async def twilio_voice(self, request: Request) -> Response:
        form = self._form(request)
        account_id = await self._twilio_account(request, form)
        event = self._parse("twilio", twilio.parse_voice, form)
        result = await self._ingest(account_id, event)
        call = result.call
        if result.blocked:
            body = twilio.reject_twiml()
        elif call.forwarded_to and call.forwarded_to != call.tracking_number:
            record = await self._telephony.record_calls(account_id)
            body = twilio.dial_twiml(
                call.forwarded_to,
                status_callback=self._base + "/v1/webhooks/twilio/status",
                recording_callback=self._base + "/v1/webhooks/twilio/recording" if record else None,
                record=record,
                timeout=self._config.dial_timeout_seconds,
            )
        else:
            body = twilio.hangup_twiml(NOT_IN_SERVICE)
        return Response(200, body, content_type=XML)

    async def twilio_status(self, request: Request) -> Response:
        form = self._form(request)
        account_id = await self._twilio_account(request, form)
        await self._ingest(account_id, self._parse("twilio", twilio.parse_status, form))
        return Response(200, twilio.empty_twiml(), content_type=XML)

    async def twilio_recording(self, request: Request) -> Response:
        form = self._form(request)
        account_id = await self._twilio_account(request, form)
        await self._ingest(account_id, self._parse("twilio", twilio.parse_recording, form))
        return Response(200, twilio.empty_twiml(), content_type=XML)

    # -- Telnyx Call Control ---------------------------------------------------------------

    async def telnyx_event(self, request: Request) -> Response:
        if not request.getHeader("telnyx-signature-ed25519") or not request.getHeader("telnyx-timestamp"):
            self._telephony.metrics.count("telnyx", "bad_signature")
            raise _forged("Telnyx")
        raw = body_bytes(request)
        try:
            event = telnyx.parse_event(raw)
        except InvalidEvent as e:
            # Only a signed payload earns a 400; a forged one is told it is forged.
            if not self._telnyx_signers(request, await self._telephony.candidate_credentials("telnyx", None)):
                self._telephony.metrics.count("telnyx", "bad_signature")
                raise _forged("Telnyx") from None
            self._telephony.metrics.count("telnyx", "invalid")
            raise ApiError(400, "invalid_event", str(e)) from None
        called = event.called_raw if event else None
        creds = await self._telephony.candidate_credentials("telnyx", called)
        signers = self._telnyx_signers(request, creds)
        if event is None:
            if not signers:
                self._telephony.metrics.count("telnyx", "bad_signature")
                raise _forged("Telnyx")
            self._telephony.metrics.count("telnyx", "ignored")
            return Response(200, {"ignored": True})
        account_id = await self._resolve("telnyx", signers, called, [event.call_ref])
        result = await self._ingest(account_id, event)
        return Response(200, {"call_id": result.call.id, "duplicate": result.duplicate})

    # -- our signed JSON (PBX) -------------------------------------------------------------

    async def pbx_event(self, request: Request) -> Response:
        header = request.getHeader("x-ct-signature")
        if not header:
            self._telephony.metrics.count("pbx", "bad_signature")
            raise _forged("X-CT-Signature")
        raw = body_bytes(request)
        event: CallEvent | None
        problem: InvalidEvent | None = None
        try:
            event = pbx.parse_event(raw)
        except InvalidEvent as e:
            event, problem = None, e
        called = event.called_raw if event else None
        signers = []
        for cred in await self._telephony.candidate_credentials("pbx", called):
            try:
                pbx.verify_signature(header, raw, [cred.secret], now=self._clock.seconds(), tolerance=self._config.signature_tolerance_seconds)
            except BadSignature:
                continue
            signers.append(cred.account_id)
        if not signers:
            self._telephony.metrics.count("pbx", "bad_signature")
            raise _forged("X-CT-Signature")
        if event is None:
            self._telephony.metrics.count("pbx", "invalid")
            raise ApiError(400, "invalid_event", str(problem))
        account_id = await self._resolve("pbx", signers, called, [event.call_ref])
        result = await self._ingest(account_id, event)
        call = result.call
        return Response(
            200,
            {
                "call_id": call.id,
                "duplicate": result.duplicate,
                "status": call.status,
                # A dialplan may ask us where to send the call (Asterisk CURL()): here it is.
                "forward_to": None if result.blocked else call.forwarded_to,
                "blocked": result.blocked,
                "match": {"method": call.match_method, "confidence": call.match_confidence},
            },
        )

    # -- account API -----------------------------------------------------------------------

    async def list_calls(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        q = query_params(request)
        now = self._clock.seconds()
        calls = await self._telephony.list_calls(
            account_id,
            since=params.timestamp(q.get("from"), "from", default=0.0) if q.get("from") else None,
            until=params.timestamp(q.get("to"), "to", default=now) if q.get("to") else None,
            before_id=params.integer(q.get("cursor"), "cursor", minimum=1) if q.get("cursor") else None,
            limit=params.integer(q.get("limit"), "limit", default=100, minimum=1, maximum=1000),
        )
        limit = params.integer(q.get("limit"), "limit", default=100, minimum=1, maximum=1000)
        body = {"calls": [c.to_json() for c in calls], "next_cursor": calls[-1].id if len(calls) == limit else None}
        return Response(200, body)

    async def _call(self, request: Request, call_id: str) -> tuple[object, dict[str, object], list[dict[str, object]]]:
        account_id = await require_account(request, self._accounts)
        found = await self._telephony.get_call(account_id, params.path_id(call_id, "call"))
        if found is None:
            raise ApiError(404, "not_found", "no such call in this account")
        return found

    async def get_call(self, request: Request, call_id: str) -> Response:
        call, _, events = await self._call(request, call_id)
        return Response(200, call.to_json() | {"events": events})  # type: ignore[attr-defined]

    async def explain(self, request: Request, call_id: str) -> Response:
        call, explain, events = await self._call(request, call_id)
        record = call.to_json()  # type: ignore[attr-defined]
        body = {
            "call_id": record["id"],
            "method": record["match"]["method"],
            "confidence": record["match"]["confidence"],
            "lease_id": record["match"]["lease_id"],
            "vid": record["match"]["vid"],
            "touchpoint_id": record["match"]["touchpoint_id"],
            "source": record["source"],
            "tracking_number": record["tracking_number"],
            "reason": explain.get("reason"),
            "others": explain.get("others", []),
            "details": {k: v for k, v in explain.items() if k not in ("reason", "others")},
            "events": events,
        }
        return Response(200, body)
