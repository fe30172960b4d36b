"""`calltrack telephony …` and `calltrack calls …` end to end on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path


MASTER_CSV = (
    # Asterisk's headerless Master.csv: accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
    # start, answer, end, duration, billsec, disposition, amaflags, uniqueid, userfield
    '"","4155550177","4155550150","from-pstn","""Bob"" <4155550177>","SIP/t-1","SIP/a-2","Dial","SIP/a","2026-11-20 10:00:00",'
    '"2026-11-20 10:00:05","2026-11-20 10:02:05",125,120,"ANSWERED","DOCUMENTATION","1700000000.1",""\n'
    '"","anonymous","4155550150","from-pstn","","SIP/t-2","","Dial","SIP/a","2026-11-20 11:00:00","","2026-11-20 11:00:20",'
    '20,0,"NO ANSWER","DOCUMENTATION","1700000000.2",""\n'
    '"","4155550178","4155550150","from-pstn","","SIP/t-3","","Dial","SIP/a","not a time","","",0,0,"ANSWERED","DOCUMENTATION","1700000000.3",""\n'
)


def test_credentials_import_list_and_block(cli, tmp_path: Path) -> None:  # noqa: F811
    cli("db", "upgrade")
    cli("account", "create", "Acme", "--timezone", "America/New_York", "--currency", "usd", "--region", "US")
    cli("site", "add", "--name", "Acme", "--domain", "acme.example", "--number", "415 555 0100", "--forward-to", "415 555 0101")
    cli("numbers", "add", "+14155550150", "--source", "radio", "--placement", "KQED morning", "--forward-to", "+14155550101")
    added = json.loads(cli("--json", "telephony", "add", "pbx"))
    assert added["secret"].startswith("whsec_") and added["webhooks"]
    assert "needs the AccountSid" in cli("telephony", "add", "twilio", "--secret", "tok", ok=False)
    cli("telephony", "add", "twilio", "--account-sid", "AC1", "--secret", "tok")
    listed = json.loads(cli("--json", "telephony", "list"))
    assert [c["provider"] for c in listed] == ["pbx", "twilio"] and all("secret" not in c for c in listed)

    (tmp_path / "Master.csv").write_text(MASTER_CSV)
    first = json.loads(cli("--json", "calls", "import", "Master.csv"))
    assert (first["imported"], first["duplicates"], first["rejected"]) == (2, 0, 1)
    assert first["matched"] == {"static": 2} and first["problems"][0]["line"] == 3
    again = json.loads(cli("--json", "calls", "import", "Master.csv"))
    assert (again["imported"], again["duplicates"]) == (0, 2)
    calls = json.loads(cli("--json", "calls", "list"))
    answered = next(c for c in calls if c["caller"] == "+14155550177")
    assert answered["status"] == "completed" and answered["duration"] == 120
    assert answered["started_at"] == 1795186800.0  # 10:00 in New York is 15:00 UTC
    assert answered["source"]["placement"] == "KQED morning" and answered["lead_id"]
    withheld = next(c for c in calls if c["caller"] is None)
    assert withheld["caller_withheld"] and withheld["status"] == "no-answer" and withheld["lead_id"] is None

    assert "blocked +14155550177" in cli("calls", "block", "415-555-0177")
    assert "not a valid phone number" in cli("calls", "block", "12", ok=False) or "not a phone number" in cli("calls", "block", "12", ok=False)
    assert "cannot read" in cli("calls", "import", "missing.csv", ok=False)
    assert "unknown time zone" in cli("calls", "import", "Master.csv", "--timezone", "Mars/Olympus", ok=False)
    (tmp_path / "latin1.csv").write_bytes("src,dst,start\n4155550177,4155550150,2026-11-20 10:00:00 Jos\xe9\n".encode("latin-1"))
    assert "not UTF-8" in cli("calls", "import", "latin1.csv", ok=False)
    assert "revoked credential 1" in cli("telephony", "revoke", "1")
    assert "no active credential 1" in cli("telephony", "revoke", "1", ok=False)
    assert [c["provider"] for c in json.loads(cli("--json", "telephony", "list"))] == ["twilio"]
