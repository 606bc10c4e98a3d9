"""`detector reviewer|bank|case|complaint|appreview|consent|audit ...`: the records from the command line.

Every command prints JSON (CSV for exports) and exits 0; refused input prints the reason and exits 1 (`audit verify`
exits 1 when the chain is broken). The database is `--database URL`, else DETECTOR_DATABASE_URL, else the SQLite
file under var/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    reviewer = _group(subparsers, "reviewer", "reviewer identities and roles")
    cmd = _command(reviewer, "add", _reviewer_add, "add a reviewer (the first one must be an admin)")
    cmd.add_argument("name")
    cmd.add_argument("--role", choices=["reviewer", "admin"], default="reviewer")
    _actor(cmd, required=False)
    cmd = _command(reviewer, "set", _reviewer_set, "change a reviewer's role or deactivate them (admin)")
    cmd.add_argument("name")
    cmd.add_argument("--role", choices=["reviewer", "admin"])
    cmd.add_argument("--deactivate", action="store_true")
    _actor(cmd)
    _command(reviewer, "list", _reviewer_list, "list reviewers and roles")

    banks = _group(subparsers, "bank", "hash banks: create, add, import/export (HMA CSV), look up")
    cmd = _command(banks, "create", _bank_create, "create a named bank (admin)")
    cmd.add_argument("name")
    cmd.add_argument("--description")
    _actor(cmd)
    _command(banks, "list", _bank_list, "list banks and their sizes")
    cmd = _command(banks, "add", _bank_add, "add files (hashed, not stored) or hashes to a bank (admin)")
    cmd.add_argument("bank")
    cmd.add_argument("files", nargs="*", type=Path)
    cmd.add_argument("--hash", action="append", default=[], metavar="TYPE:VALUE",
                     help="a signal such as pdq:<64 hex> (repeatable)")
    cmd.add_argument("--labels", help="comma-separated labels")
    _actor(cmd)
    cmd = _command(banks, "import", _bank_import, "import an HMA-style CSV (signal_type,signal,labels) (admin)")
    cmd.add_argument("bank")
    cmd.add_argument("csv", type=Path)
    cmd.add_argument("--labels", help="labels added to every row")
    _actor(cmd)
    cmd = _command(banks, "export", _bank_export, "export a bank as HMA-style CSV")
    cmd.add_argument("bank")
    cmd.add_argument("--output", "-o", type=Path)
    cmd = _command(banks, "remove", _bank_remove, "remove one entry (admin)")
    cmd.add_argument("entry_id", type=int)
    _actor(cmd)
    cmd = _command(banks, "lookup", _bank_lookup, "hash files and list their bank matches")
    cmd.add_argument("files", nargs="+", type=Path)

    case = _group(subparsers, "case", "cases, decisions, refutations and regulator reports")
    cmd = _command(case, "open", _case_open, "open a case: scan FILE (or use --result) or a manual case")
    cmd.add_argument("file", nargs="?", type=Path)
    cmd.add_argument("--result", type=Path, help="a scan result JSON (from `detector scan --json`)")
    cmd.add_argument("--title")
    cmd.add_argument("--notes")
    cmd.add_argument("--heatmap", action="append", default=[], type=Path, help="a heatmap PNG (repeatable)")
    _actor(cmd)
    cmd = _command(case, "show", _case_show, "show a case (audited)")
    cmd.add_argument("case_id", type=int)
    _actor(cmd)
    cmd = _command(case, "decide", _case_decide, "decide a case; optionally bank it and publish a refutation")
    cmd.add_argument("case_id", type=int)
    cmd.add_argument("decision", choices=["confirmed_synthetic", "authentic", "inconclusive"])
    cmd.add_argument("--notes")
    cmd.add_argument("--bank", help="add the content's hashes to this bank (admin)")
    cmd.add_argument("--labels")
    cmd.add_argument("--refutation-title")
    cmd.add_argument("--refutation-text")
    cmd.add_argument("--refutation-link")
    _actor(cmd)
    cmd = _command(case, "evidence", _case_evidence, "attach a file to a case's evidence")
    cmd.add_argument("case_id", type=int)
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--kind", default="file", choices=["file", "heatmap", "note"])
    cmd.add_argument("--media-type", default="application/octet-stream")
    _actor(cmd)
    cmd = _command(case, "report", _case_report, "regulator report over [start, end): JSON or CSV")
    cmd.add_argument("--start", required=True, help="ISO date or time (UTC)")
    cmd.add_argument("--end", required=True, help="ISO date or time (UTC), exclusive")
    cmd.add_argument("--csv", action="store_true")
    cmd.add_argument("--output", "-o", type=Path)
    _actor(cmd)

    complaint = _group(subparsers, "complaint", "complaints and appeals with deadlines")
    _command(complaint, "procedures", _complaint_procedures, "the published procedure: categories and deadlines")
    cmd = _command(complaint, "set-procedure", _complaint_set_procedure, "set a category's deadlines (admin)")
    cmd.add_argument("category")
    cmd.add_argument("--description", required=True)
    cmd.add_argument("--ack-hours", type=float, required=True)
    cmd.add_argument("--resolve-hours", type=float, required=True)
    _actor(cmd)
    cmd = _command(complaint, "file", _complaint_file, "file a complaint or an appeal (prints the status token)")
    cmd.add_argument("--category", required=True)
    cmd.add_argument("--contact", required=True, help="e-mail address or phone number")
    cmd.add_argument("--message", required=True)
    cmd.add_argument("--subject", help="what it is about: a content hash or URL")
    cmd.add_argument("--case", type=int, dest="case_id", help="the case it is about (required for an appeal)")
    cmd = _command(complaint, "status", _complaint_status, "status and history by token")
    cmd.add_argument("token")
    cmd = _command(complaint, "update", _complaint_update, "acknowledge, resolve or reject a complaint")
    cmd.add_argument("complaint_id", type=int)
    cmd.add_argument("status", choices=["acknowledged", "resolved", "rejected"])
    cmd.add_argument("--note")
    _actor(cmd)
    _command(complaint, "overdue", _complaint_overdue, "open complaints past a deadline")
    _command(complaint, "metrics", _complaint_metrics, "open and overdue counts")

    review = _group(subparsers, "appreview", "app-store review of deep-synthesis apps")
    cmd = _command(review, "submit", _appreview_submit, "review an app from its identity and sample outputs")
    cmd.add_argument("samples", nargs="+", type=Path)
    cmd.add_argument("--name", required=True)
    cmd.add_argument("--package-id", required=True)
    cmd.add_argument("--version", dest="app_version", required=True)
    cmd.add_argument("--filing-number")
    cmd.add_argument("--security-assessment")
    cmd.add_argument("--submitter", required=True)
    cmd = _command(review, "show", _appreview_show, "show a review report")
    cmd.add_argument("review_id", type=int)

    consent = _group(subparsers, "consent", "consent registry for faces and voices (embeddings only)")
    cmd = _command(consent, "register", _consent_register, "register consent from a face image or voice recording")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--subject", required=True)
    cmd.add_argument("--kind", choices=["face", "voice"], required=True)
    cmd.add_argument("--scope", required=True)
    cmd.add_argument("--expires", help="ISO date or time (UTC)")
    cmd.add_argument("--representative")
    cmd = _command(consent, "status", _consent_status, "show a consent record by token")
    cmd.add_argument("token")
    cmd = _command(consent, "withdraw", _consent_withdraw, "delete a consent record by token")
    cmd.add_argument("token")
    cmd = _command(consent, "check", _consent_check, "is there consent on record for the faces/voice in FILE?")
    cmd.add_argument("file", type=Path)

    log = _group(subparsers, "audit", "the append-only audit chain")
    _command(log, "verify", _audit_verify, "check the chain: exit 1 if any entry was edited or deleted")
    cmd = _command(log, "prune", _audit_prune, "delete entries older than the retention period (admin; audited)")
    _actor(cmd)
    cmd = _command(log, "retention", _audit_retention, "set the retention period in days (admin; >= 183)")
    cmd.add_argument("days", type=int)
    _actor(cmd)
    cmd = _command(log, "log", _audit_log, "recent entries")
    cmd.add_argument("--since")
    cmd.add_argument("--limit", type=int, default=100)


# ---- plumbing ----------------------------------------------------------------------------------------------------

def _group(subparsers, name: str, help_text: str):
    parser = subparsers.add_parser(name, help=help_text)
    return parser.add_subparsers(dest=f"{name}_command", required=True)


def _command(group, name: str, handler, help_text: str) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text)
    parser.add_argument("--database", help="database URL (default: DETECTOR_DATABASE_URL or var/detector.db)")
    parser.set_defaults(func=lambda args: _run(handler, args))
    return parser


def _actor(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--actor", required=required, help="your reviewer name (roles are checked)")


def _run(handler, args: argparse.Namespace) -> int:
    from .api import open_records
    from .common import RecordsError

    try:
        return handler(open_records(args.database), args)
    except RecordsError as exc:
        print(f"detector: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"detector: {exc}", file=sys.stderr)
        return 1


def _print(value: dict) -> int:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))
    return 0


def _write(text: str, output: Path | None) -> int:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    return 0


# ---- handlers ----------------------------------------------------------------------------------------------------

def _reviewer_add(records, args) -> int:
    return _print(records.add_reviewer({"actor": args.actor, "name": args.name, "role": args.role}))


def _reviewer_set(records, args) -> int:
    return _print(records.update_reviewer({"actor": args.actor, "name": args.name, "role": args.role,
                                           "active": False if args.deactivate else None}))


def _reviewer_list(records, args) -> int:
    return _print(records.list_reviewers())


def _bank_create(records, args) -> int:
    return _print(records.create_bank({"actor": args.actor, "name": args.name, "description": args.description}))


def _bank_list(records, args) -> int:
    return _print(records.list_banks())


def _bank_add(records, args) -> int:
    from .common import RecordsError

    signals = [s for path in args.files for s in records.hash_media(path.read_bytes())["signals"]]
    for text in args.hash:
        signal_type, _, value = text.partition(":")
        signals.append({"signal_type": signal_type, "value": value})
    if not signals:
        raise RecordsError(400, "give files or --hash TYPE:VALUE")
    return _print(records.add_to_bank({"actor": args.actor, "bank": args.bank, "signals": signals,
                                       "labels": args.labels}))


def _bank_import(records, args) -> int:
    return _print(records.import_bank({"actor": args.actor, "bank": args.bank,
                                       "csv": args.csv.read_text(encoding="utf-8"), "labels": args.labels}))


def _bank_export(records, args) -> int:
    return _write(records.export_bank(args.bank), args.output)


def _bank_remove(records, args) -> int:
    return _print(records.remove_bank_entry({"actor": args.actor, "entry_id": args.entry_id}))


def _bank_lookup(records, args) -> int:
    return _print({str(path): records.lookup(records.hash_media(path.read_bytes()))["matches"]
                   for path in args.files})


def _case_open(records, args) -> int:
    result = json.loads(args.result.read_text(encoding="utf-8")) if args.result else None
    data = args.file.read_bytes() if args.file else None
    if args.file and result is None:
        from ..media import MediaInput

        result = records.scanner().scan([MediaInput(source=str(args.file), data=data)])[0].to_dict()
    heatmaps = [(path.name, path.read_bytes()) for path in args.heatmap]
    return _print(records.open_case({"actor": args.actor, "result": result, "title": args.title,
                                     "notes": args.notes}, data=data, heatmaps=heatmaps))


def _case_show(records, args) -> int:
    return _print(records.get_case({"actor": args.actor, "case_id": args.case_id}))


def _case_decide(records, args) -> int:
    refutation = None
    if args.refutation_title or args.refutation_text or args.refutation_link:
        refutation = {"title": args.refutation_title, "text": args.refutation_text, "link": args.refutation_link}
    return _print(records.decide_case({"actor": args.actor, "case_id": args.case_id, "decision": args.decision,
                                       "notes": args.notes, "bank": args.bank, "labels": args.labels,
                                       "refutation": refutation}))


def _case_evidence(records, args) -> int:
    return _print(records.add_evidence({"actor": args.actor, "case_id": args.case_id, "kind": args.kind,
                                        "name": args.file.name, "media_type": args.media_type},
                                       args.file.read_bytes()))


def _case_report(records, args) -> int:
    payload = {"actor": args.actor, "start": args.start, "end": args.end}
    if args.csv:
        return _write(records.regulator_report_csv(payload), args.output)
    return _write(json.dumps(records.regulator_report(payload), ensure_ascii=False, indent=2) + "\n", args.output)


def _complaint_procedures(records, args) -> int:
    return _print(records.procedures())


def _complaint_set_procedure(records, args) -> int:
    return _print(records.set_procedure({"actor": args.actor, "category": args.category,
                                         "description": args.description,
                                         "acknowledge_within_hours": args.ack_hours,
                                         "resolve_within_hours": args.resolve_hours}))


def _complaint_file(records, args) -> int:
    return _print(records.file_complaint({"category": args.category, "contact": args.contact,
                                          "message": args.message, "subject": args.subject,
                                          "case_id": args.case_id}))


def _complaint_status(records, args) -> int:
    return _print(records.complaint_status(args.token))


def _complaint_update(records, args) -> int:
    return _print(records.update_complaint({"actor": args.actor, "complaint_id": args.complaint_id,
                                            "status": args.status, "note": args.note}))


def _complaint_overdue(records, args) -> int:
    return _print(records.overdue_complaints())


def _complaint_metrics(records, args) -> int:
    return _print(records.metrics())


def _appreview_submit(records, args) -> int:
    identity = {"name": args.name, "package_id": args.package_id, "version": args.app_version,
                "filing_number": args.filing_number, "security_assessment": args.security_assessment}
    samples = [(path.name, path.read_bytes()) for path in args.samples]
    return _print(records.submit_app_review({"submitter": args.submitter, "identity": identity}, samples))


def _appreview_show(records, args) -> int:
    return _print(records.get_app_review(args.review_id))


def _consent_register(records, args) -> int:
    return _print(records.register_consent({"subject": args.subject, "kind": args.kind, "scope": args.scope,
                                            "expires_at": args.expires, "representative": args.representative},
                                           args.file.read_bytes()))


def _consent_status(records, args) -> int:
    return _print(records.consent_status(args.token))


def _consent_withdraw(records, args) -> int:
    return _print(records.withdraw_consent(args.token))


def _consent_check(records, args) -> int:
    return _print(records.check_consent(args.file.read_bytes()))


def _audit_verify(records, args) -> int:
    report = records.verify_audit()
    _print(report)
    return 0 if report["ok"] else 1


def _audit_prune(records, args) -> int:
    return _print(records.prune_audit({"actor": args.actor}))


def _audit_retention(records, args) -> int:
    return _print(records.set_retention({"actor": args.actor, "days": args.days}))


def _audit_log(records, args) -> int:
    return _print(records.audit_entries({"since": args.since, "limit": args.limit}))
